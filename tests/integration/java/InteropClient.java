// The reference Java client (kafka-clients), driven by tests/foreign.py for the interop tests.
//
//   java -cp "$KAFKA_CLASSPATH" InteropClient.java produce BOOTSTRAP < spec.json
//   java -cp "$KAFKA_CLASSPATH" InteropClient.java consume BOOTSTRAP < spec.json
//
// produce: {"producers": [{"config": {"compression.type": "gzip", ...},
//                          "records": [RECORD, ...],
//                          "transactions": [{"outcome": "commit" | "abort", "records": [RECORD, ...]}]}]}
//   RECORD: {"topic": T, "key": HEX|null, "value": HEX|null, "headers": [[NAME, HEX|null], ...],
//            "timestamp": MS|null, "partition": N|null}
//   A producer sends its "records", or runs its "transactions" in order (those need a
//   "transactional.id" in its config). Prints one JSON line per record sent:
//   {"topic", "partition", "offset", "timestamp"}, in the order of the spec.
//
// consume: {"topics": [T, ...], "count": N, "config": {"isolation.level": ...}, "within_ms": MS}
//   Reads every partition of the topics from the beginning, without a consumer group, until N
//   records have arrived (or fails after within_ms); prints one JSON line per record:
//   {"topic", "partition", "offset", "key": HEX|null, "value": HEX|null,
//    "headers": [[NAME, HEX|null], ...], "timestamp", "timestamp_type"}.
//
// Bytes travel as hex so that binary keys and values cross the process boundary exactly.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class InteropClient {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HexFormat HEX = HexFormat.of();

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: InteropClient produce|consume BOOTSTRAP < spec.json");
            System.exit(2);
        }
        JsonNode spec = JSON.readTree(System.in);
        switch (args[0]) {
            case "produce" -> produce(args[1], spec);
            case "consume" -> consume(args[1], spec);
            default -> {
                System.err.println("unknown command " + args[0]);
                System.exit(2);
            }
        }
    }

    static void produce(String bootstrap, JsonNode spec) throws Exception {
        for (JsonNode producerSpec : spec.path("producers")) {
            Properties config = properties(bootstrap, producerSpec.path("config"));
            try (var producer = new KafkaProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer())) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (JsonNode record : producerSpec.path("records")) {
                    sent.add(producer.send(record(record)));
                }
                if (producerSpec.has("transactions")) {
                    producer.initTransactions();
                    for (JsonNode transaction : producerSpec.path("transactions")) {
                        producer.beginTransaction();
                        for (JsonNode record : transaction.path("records")) {
                            sent.add(producer.send(record(record)));
                        }
                        producer.flush(); // every send has its offset before the outcome
                        switch (transaction.path("outcome").asText()) {
                            case "commit" -> producer.commitTransaction();
                            case "abort" -> producer.abortTransaction();
                            default -> throw new IllegalArgumentException("outcome: commit or abort");
                        }
                    }
                }
                for (Future<RecordMetadata> future : sent) {
                    RecordMetadata metadata = future.get();
                    ObjectNode line = JSON.createObjectNode();
                    line.put("topic", metadata.topic());
                    line.put("partition", metadata.partition());
                    line.put("offset", metadata.offset());
                    line.put("timestamp", metadata.timestamp());
                    System.out.println(JSON.writeValueAsString(line));
                }
            }
        }
    }

    static ProducerRecord<byte[], byte[]> record(JsonNode record) {
        RecordHeaders headers = new RecordHeaders();
        for (JsonNode header : record.path("headers")) {
            headers.add(header.get(0).asText(), bytes(header.get(1)));
        }
        JsonNode partition = record.path("partition");
        JsonNode timestamp = record.path("timestamp");
        return new ProducerRecord<>(
                record.get("topic").asText(),
                partition.isIntegralNumber() ? partition.asInt() : null,
                timestamp.isIntegralNumber() ? timestamp.asLong() : null,
                bytes(record.path("key")),
                bytes(record.path("value")),
                headers);
    }

    static void consume(String bootstrap, JsonNode spec) {
        Properties config = properties(bootstrap, spec.path("config"));
        config.put("enable.auto.commit", "false");
        int count = spec.get("count").asInt();
        long deadline = System.currentTimeMillis() + spec.path("within_ms").asLong(30_000);
        try (var consumer = new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (JsonNode topic : spec.path("topics")) {
                for (PartitionInfo info : consumer.partitionsFor(topic.asText(), Duration.ofSeconds(30))) {
                    partitions.add(new TopicPartition(info.topic(), info.partition()));
                }
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            int seen = 0;
            while (seen < count) {
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("only " + seen + " of " + count + " records arrived");
                    System.exit(1);
                }
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    System.out.println(JSON.writeValueAsString(line(record)));
                    seen++;
                }
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException error) {
            throw new IllegalStateException(error);
        }
    }

    static ObjectNode line(ConsumerRecord<byte[], byte[]> record) {
        ObjectNode line = JSON.createObjectNode();
        line.put("topic", record.topic());
        line.put("partition", record.partition());
        line.put("offset", record.offset());
        line.put("key", hex(record.key()));
        line.put("value", hex(record.value()));
        ArrayNode headers = line.putArray("headers");
        for (Header header : record.headers()) {
            headers.addArray().add(header.key()).add(hex(header.value()));
        }
        line.put("timestamp", record.timestamp());
        line.put("timestamp_type", record.timestampType().name);
        return line;
    }

    static Properties properties(String bootstrap, JsonNode config) {
        Properties properties = new Properties();
        properties.put("bootstrap.servers", bootstrap);
        config.properties().forEach(entry -> properties.put(entry.getKey(), entry.getValue().asText()));
        return properties;
    }

    static byte[] bytes(JsonNode hex) {
        return hex == null || hex.isNull() || hex.isMissingNode() ? null : HEX.parseHex(hex.asText());
    }

    static String hex(byte[] bytes) {
        return bytes == null ? null : HEX.formatHex(bytes);
    }
}
