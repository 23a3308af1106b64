// @cloudamqp/amqp-client 4: connections with heartbeats left idle after
// their open (for 4.5 s by default). This client sends no heartbeats of its own (it answers the
// server's) and closes a connection after one interval without a byte from
// the server. Prints how many closed (JSON).
// usage: node idle_heartbeats.js MODULE_DIR URL TAG [CONNECTIONS HEARTBEAT IDLE_MS]
const { AMQPClient } = require(process.argv[2]);
const url = process.argv[3];
const count = Number(process.argv[5] || 20), heartbeat = Number(process.argv[6] || 2);
const idle = Number(process.argv[7] || 4500);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  // each opened at a moment of its own, so that their heartbeat timers
  // (the server's, the client's) are not in step
  const conns = await Promise.all(Array.from({ length: count }, async () => {
    await sleep(Math.random() * 1000);
    const c = await new AMQPClient(`${url}?heartbeat=${heartbeat}`).connect();
    c.onerror = () => {};
    return c;
  }));
  await sleep(idle);
  const closed = conns.filter((c) => c.closed).length;
  for (const c of conns) if (!c.closed) await c.close().catch(() => {});
  console.log(JSON.stringify({ closed, of: count, heartbeat: conns[0].heartbeat }));
})().catch((e) => { console.error('FAILED', e); process.exit(1); });
