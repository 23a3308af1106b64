// amqp-connection-manager 5 (amqplib under it) across a SIGKILL of its
// server: the driver (test_amqp_node_clients.py) kills the server when this
// script prints "KILL", restarts it and answers "RESTARTED" on stdin. A
// consumer acks m0..m4 and holds m5..m9 unacked when the server dies; m10..m12
// are published while it is away. The last line is what the client observed
// (JSON, names with the run's tag as T).
// usage: node acm_reconnect.js MODULE_DIR URL TAG
const amqp = require(process.argv[2]);
const url = process.argv[3], tag = process.argv[4];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (fn, ms) => { for (let t = 0; t < ms && !fn(); t += 20) await sleep(20); return fn(); };
const lines = [];
require('readline').createInterface({ input: process.stdin }).on('line', (l) => lines.push(l));
const out = {};
(async () => {
  const q = 'acm.' + tag;
  const conn = amqp.connect([url], { heartbeatIntervalInSeconds: 2, reconnectTimeInSeconds: 0.2 });
  const events = [];
  conn.on('connect', () => events.push('connect'));
  conn.on('disconnect', ({ err }) => events.push('disconnect'));
  // (its failed attempts while the server is away are as many as its timing makes)
  const pub = conn.createChannel({ confirm: true, setup: (ch) => ch.assertQueue(q, { durable: true }) });
  pub.on('error', (e) => events.push('pub error ' + e.message));
  const got = [];
  const held = [];
  let acking = true;
  const sub = conn.createChannel({
    setup: async (ch) => {
      await ch.assertQueue(q, { durable: true });
      await ch.prefetch(10);
      await ch.consume(q, (m) => {
        if (m === null) { events.push("cancelled"); return; }
        got.push([m.content.toString(), m.fields.redelivered]);
        if (acking && Number(m.content.toString().slice(1)) < 5) ch.ack(m); else held.push(m);
      });
    },
  });
  await conn.connect({ timeout: 10000 });
  await pub.waitForConnect(); await sub.waitForConnect();
  const confirmed = [];
  for (let i = 0; i < 10; i++) { await pub.sendToQueue(q, Buffer.from('m' + i), { persistent: true }); confirmed.push('m' + i); }
  await until(() => got.length >= 10, 5000);
  out.before = got.slice();
  await sleep(1000);  // the acks of m0..m4 reach the server
  console.log('KILL');
  await until(() => events.includes('disconnect'), 15000);
  // publishes while the server is away: sent once it is back
  const pending = [];
  for (let i = 10; i < 13; i++) pending.push(pub.sendToQueue(q, Buffer.from('m' + i), { persistent: true }).then(() => confirmed.push('m' + i), (e) => 'failed ' + e.message));
  out.queuedWhileDown = pub.queueLength();
  await until(() => lines.includes('RESTARTED'), 60000);
  await until(() => events.filter((e) => e === 'connect').length >= 2, 30000);
  const outcomes = await Promise.race([Promise.all(pending), sleep(20000).then(() => 'timeout')]);
  out.pendingOutcomes = outcomes;
  // m5..m9 again and m10..m12; then a while for any more (none come)
  await until(() => got.length >= out.before.length + 8, 10000);
  await sleep(300);
  out.after = got.slice(out.before.length).sort();
  out.events = events.slice();
  const delivered = new Set(got.map((g) => g[0]));
  out.lostConfirmed = confirmed.filter((b) => !delivered.has(b));
  out.redeliveredHeld = got.slice(out.before.length).filter((g) => g[1]).map((g) => g[0]).sort();
  // ack everything left on the new channel, then the queue is empty
  const ch = sub._channel;
  ch.ackAll();
  await sleep(300);
  const check = await pub._channel.checkQueue(q);
  out.count = [check.messageCount, check.consumerCount];
  await pub._channel.deleteQueue(q);
  await conn.close();
  console.log(JSON.stringify(out).split(tag).join('T'));
  process.exit(0);
})().catch((e) => { console.error('FAILED', e); console.log(JSON.stringify(out).split(tag).join('T')); process.exit(1); });
