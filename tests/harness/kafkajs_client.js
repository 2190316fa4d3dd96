#!/usr/bin/env node
// A Node.js Kafka client over TLS for the tests/fixtures/tls captures (see tls_broker.py's `node`
// story, which runs this under `node --tls-keylog=FILE` so Node itself writes the TLS secrets).
//
//   node --tls-keylog=K tests/harness/kafkajs_client.js --bootstrap 127.0.0.1:PORT --ca ca.pem \
//        [--topic kw-tls-node] [--group kw-tls-node-group]
//
// kw-tls-node (kafkajs, acks=1) writes 4 records to the topic, partitions 0 and 1, one send each
// (so offsets are exact and the `weak_acks` alert repeats); then kw-tls-node-consumer reads them in
// the group and commits by hand. Prints FACT lines like tests/harness/harness.py's fact().
//
// kafkajs is installed outside the repo: `npm install --prefix .tools/node kafkajs` (pure JS).

"use strict";

const fs = require("fs");
const path = require("path");

function loadKafkajs() {
  try {
    return require("kafkajs");
  } catch (e) {
    return require(path.join(__dirname, "..", "..", ".tools", "node", "node_modules", "kafkajs"));
  }
}

const { Kafka, logLevel } = loadKafkajs();
const START = Date.now();
const TIMEOUT_MS = 30000;

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (dflt === undefined) throw new Error(`--${name} is required`);
  return dflt;
}

function sorted(o) {
  if (Array.isArray(o)) return o.map(sorted);
  if (o && typeof o === "object") {
    const r = {};
    for (const k of Object.keys(o).sort()) r[k] = sorted(o[k]);
    return r;
  }
  return o;
}

function fact(kind, fields) {
  const elapsed = Math.round((Date.now() - START) / 10) / 100;
  console.log("FACT " + JSON.stringify(sorted({ fact: kind, elapsed, ...fields })));
}

function kafka(bootstrap, ca, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    ssl: { ca: [fs.readFileSync(ca)] },
    connectionTimeout: 10000,
    requestTimeout: TIMEOUT_MS,
    retry: { retries: 3 },
    logLevel: logLevel.WARN,
  });
}

async function produce(bootstrap, ca, topic) {
  const p = kafka(bootstrap, ca, "kw-tls-node").producer({ allowAutoTopicCreation: false, idempotent: false });
  await p.connect();
  const offsets = {};
  for (let i = 0; i < 4; i++) {
    const partition = i % 2;
    const [md] = await p.send({
      topic,
      acks: 1,
      messages: [{ value: `kw-tls-node-${i}`, partition }],
    });
    (offsets[String(md.partition)] ||= []).push(Number(md.baseOffset));
  }
  await p.disconnect();
  fact("produced", { client_id: "kw-tls-node", topic, acks: "1", offsets });
}

async function consume(bootstrap, ca, topic, group) {
  const c = kafka(bootstrap, ca, "kw-tls-node-consumer").consumer({
    groupId: group,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    rebalanceTimeout: 10000,
  });
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  const pos = {};
  let n = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  await c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      pos[String(partition)] = Number(message.offset) + 1;
      n += 1;
      if (n >= 4) done();
    },
  });
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`4 records in ${group}: got ${n}`)), TIMEOUT_MS);
  });
  await Promise.race([all, late]);
  clearTimeout(timer);
  await c.commitOffsets(
    Object.entries(pos).map(([partition, offset]) => ({ topic, partition: Number(partition), offset: String(offset) })),
  );
  fact("committed", { client_id: "kw-tls-node-consumer", group, offsets: pos });
  await c.disconnect();
}

async function main() {
  const bootstrap = arg("bootstrap");
  const ca = arg("ca");
  const topic = arg("topic", "kw-tls-node");
  const group = arg("group", "kw-tls-node-group");
  await produce(bootstrap, ca, topic);
  if (group !== "none") await consume(bootstrap, ca, topic, group);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
