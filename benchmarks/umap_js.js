// umap-js (the UMAP of TensorFlow's Embedding Projector) on a vecs.tsv, for
// scripts/compare-umap-js: reads the vectors, maps them with the Projector's settings
// (nNeighbors 15, minDist 0.1, spread 1, umap-js's default epochs), writes the map as
// "x<TAB>y" lines and prints {"points": n, "seconds": s, "cpu_seconds": c} for fit() alone.
//
// Usage: node benchmarks/umap_js.js UMAP_JS_DIR VECS.tsv OUT.tsv [SEED]
"use strict";
const fs = require("fs");
const path = require("path");

const [umapDir, vecsPath, outPath, seedText] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node umap_js.js UMAP_JS_DIR VECS.tsv OUT.tsv [SEED]");
  process.exit(2);
}
const { UMAP } = require(path.resolve(umapDir, "node_modules", "umap-js"));

// mulberry32: a small seeded generator, so that a run can be repeated (umap-js takes any
// function returning uniform numbers in [0, 1)).
function mulberry32(seed) {
  return function () {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const data = fs.readFileSync(vecsPath, "utf8").split("\n").filter(line => line.length > 0)
  .map(line => line.split("\t").map(Number));
const umap = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, spread: 1.0,
                        random: mulberry32(Number(seedText || 42)) });
const start = process.hrtime.bigint(), cpuStart = process.cpuUsage();
const map = umap.fit(data);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart), cpuSeconds = (cpu.user + cpu.system) / 1e6;
fs.writeFileSync(outPath, map.map(p => p[0] + "\t" + p[1]).join("\n") + "\n");
console.log(JSON.stringify({ points: data.length, seconds, cpu_seconds: cpuSeconds }));
