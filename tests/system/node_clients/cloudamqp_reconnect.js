// @cloudamqp/amqp-client 4: a connection's edges (credentials, vhost, the
// tuning asked for in the URL), then its AMQPSession across a
// SIGKILL of its server: the driver (test_amqp_node_clients.py) kills the
// server when this script prints "KILL", restarts it and answers
// "RESTARTED" on stdin. The subscriber acks m0..m4 and holds m5..m9
// unacked when the server dies. The last line is what the client observed
// (JSON, names with the run's tag as T).
// usage: node cloudamqp_reconnect.js MODULE_DIR URL TAG
const { AMQPClient, AMQPSession } = require(process.argv[2]);
const url = process.argv[3], tag = process.argv[4];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (fn, ms) => { for (let t = 0; t < ms && !fn(); t += 20) await sleep(20); return fn(); };
const errOf = (e) => String(e && e.message || e);
const lines = [];
require('readline').createInterface({ input: process.stdin }).on('line', (l) => lines.push(l));
const out = {};
(async () => {
  const u = new URL(url);
  const base = `amqp://${u.host}`;
  out.badPassword = await new AMQPClient(`amqp://guest:wrong@${u.host}`).connect().then(() => 'connected', errOf);
  out.badVhost = await new AMQPClient(`amqp://guest:guest@${u.host}/nosuch`).connect().then(() => 'connected', errOf);
  const vh = await new AMQPClient(`amqp://guest:guest@${u.host}/%2f?heartbeat=2&frameMax=16384&channelMax=7&name=arb-test`).connect();
  out.negotiated = [vh.vhost, vh.heartbeat, vh.frameMax, vh.channelMax];
  const chans = [];
  for (let i = 0; i < 7; i++) chans.push((await vh.channel()).id);
  out.channels = chans;
  out.channelOverMax = await vh.channel().then((c) => 'opened ' + c.id, errOf);
  // (connections left idle on heartbeats: idle_heartbeats.js)
  await vh.close();

  const q = 'sess.' + tag;
  const events = [];
  // no heartbeats: the SIGKILL ends its socket at once
  const session = await AMQPSession.connect(url, { reconnectInterval: 200, maxReconnectInterval: 500,
    onconnect: () => events.push('connect'), ondisconnect: () => events.push('disconnect') });
  const qh = await session.queue(q, { durable: true });
  const got = [];
  let ackBelow = 5;
  const sub = await qh.subscribe({ prefetch: 10, noAck: false }, async (m) => {
    const body = m.bodyString();
    got.push([body, m.redelivered]);
    if (Number(body.slice(1)) < ackBelow) await m.ack();
    else await new Promise(() => {});  // held: never settled on this connection
  });
  for (let i = 0; i < 10; i++) await qh.publish('m' + i, { deliveryMode: 2 });
  await until(() => got.length >= 10, 5000);
  out.before = got.slice();
  await sleep(1000);
  ackBelow = 100;
  console.log('KILL');
  await until(() => events.includes('disconnect'), 15000);
  const pending = [];
  for (let i = 10; i < 13; i++) pending.push(qh.publish('m' + i, { deliveryMode: 2 }).then(() => 'confirmed', (e) => 'failed: ' + errOf(e)));
  await until(() => lines.includes('RESTARTED'), 60000);
  await until(() => events.filter((e) => e === 'connect').length >= 1 && !session.closed, 30000);
  out.pending = await Promise.race([Promise.all(pending), sleep(15000).then(() => 'timeout')]);
  // m5..m9 again; then a while for any more (none come: m10..m12 failed)
  await until(() => got.length >= out.before.length + 5, 10000);
  await sleep(300);
  out.after = got.slice(out.before.length).sort();
  out.events = events.slice();
  await sub.cancel();
  const check = await qh.get();
  out.leftover = check && check.bodyString();
  await qh.delete();
  await session.stop();
  console.log(JSON.stringify(out).split(tag).join('T'));
  process.exit(0);
})().catch((e) => { console.error('FAILED', e); console.log(JSON.stringify(out).split(tag).join('T')); process.exit(1); });
