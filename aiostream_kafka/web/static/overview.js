// Refreshes the overview's numbers and plots. Everything from the server is set with
// textContent or as SVG attributes, never parsed as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const table = document.getElementById("clusters");

function polyline(points, className) {
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", className);
  line.setAttribute("points", points);
  line.setAttribute("vector-effect", "non-scaling-stroke");
  return line;
}

function plot(svg, history) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  if (history.length < 2) return;
  const first = history[0][0], last = history[history.length - 1][0];
  const span = Math.max(last - first, 1);
  for (const [index, className] of [[1, "rate"], [2, "lag"]]) {
    const top = Math.max(...history.map((s) => s[index]), 1);
    const points = history.map((s) => `${((s[0] - first) / span) * 200},${40 - (s[index] / top) * 38 - 1}`);
    svg.appendChild(polyline(points.join(" "), className));
  }
}

function text(cell, value) {
  if (cell && cell.textContent !== String(value)) cell.textContent = String(value);
}

function processRow(p) {
  const row = document.createElement("tr");
  const cells = [p.id, p.app, `${p.uptime} s`, `${p.age} s ago`, p.messages, p.rate, p.errors, p.partitions];
  cells.forEach((value, i) => {
    const cell = document.createElement("td");
    if (i >= 2) cell.className = "num";
    cell.textContent = String(value);
    row.appendChild(cell);
  });
  return row;
}

async function refresh() {
  try {
    const response = await fetch(table.dataset.api, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    text(document.getElementById("reading"), data.reading);
    for (const c of data.clusters) {
      const row = table.querySelector(`tr[data-cluster="${CSS.escape(c.name)}"]`);
      if (!row) continue;
      const health = row.querySelector('[data-field="health"]');
      text(health, c.health);
      health.className = "health " + (c.healthy ? "ok" : c.healthy === false ? "bad" : "");
      text(row.querySelector('[data-field="rate"]'), c.rate);
      text(row.querySelector('[data-field="lag"]'), c.lag);
      text(row.querySelector('[data-field="processes"]'), c.processes);
      plot(row.querySelector('[data-field="plot"]'), c.history);
    }
    const body = document.querySelector("#processes tbody");
    const rows = data.processes.map(processRow);
    if (rows.length === 0) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 8;
      cell.textContent = "No process has reported in the last minutes.";
      row.className = "empty";
      row.appendChild(cell);
      rows.push(row);
    }
    body.replaceChildren(...rows);
  } catch (error) {
    // the next tick tries again
  }
}

refresh();
setInterval(refresh, 2000);
