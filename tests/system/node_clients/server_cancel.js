// @cloudamqp/amqp-client 4: a consumer that the server cancels (its queue
// deleted from another channel). The client answers a basic.cancel whose
// nowait is not set with a Cancel-Ok; RabbitMQ sends it with nowait set,
// and would close the connection on a Cancel-Ok (503), as the gateway does.
// Prints what the client observed (JSON).
// usage: node server_cancel.js MODULE_DIR URL TAG
const { AMQPClient } = require(process.argv[2]);
const url = process.argv[3], tag = process.argv[4];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errOf = (e) => String(e && e.message || e);
(async () => {
  const conn = await new AMQPClient(url).connect();
  let connError = null, chError = null;
  conn.onerror = (e) => { connError = errOf(e); };
  const ch = await conn.channel();
  const q = 'cancelled.' + tag;
  await ch.queueDeclare(q, { durable: false });
  const consuming = await conn.channel();
  consuming.onerror = (reason) => { chError = reason; };
  const consumer = await consuming.basicConsume(q, { noAck: true }, () => {});
  const cancelled = consumer.wait(5000).then(() => 'resolved', (e) => 'rejected: ' + errOf(e));
  const deleted = await ch.queueDelete(q);
  const out = { deleted, consumer: await cancelled };
  await sleep(300);
  out.closed = { connection: conn.closed, channel: consuming.closed, deleting: ch.closed };
  out.errors = { connection: connError, channel: chError };
  out.declareAfter = await consuming.queueDeclare('', { exclusive: true })
    .then((ok) => ok.messageCount, errOf);
  await conn.close().catch(() => {});
  console.log(JSON.stringify(out).split(tag).join('T'));
})().catch((e) => { console.error('FAILED', e); process.exit(1); });
