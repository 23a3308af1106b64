// A session of @cloudamqp/amqp-client 4 (its low-level AMQPClient and its
// AMQPSession) doing what its users do, printed as JSON: what the client
// observed, names with the run's tag as T. test_amqp_versus_rabbitmq.py
// runs it against RabbitMQ and the gateway and compares.
// usage: node cloudamqp_session.js MODULE_DIR URL TAG
const { AMQPClient, AMQPSession } = require(process.argv[2]);
const url = process.argv[3], tag = process.argv[4];
const out = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errOf = (e) => String(e && e.message || e);
async function attempt(conn, fn) {
  const ch = await conn.channel();
  let async = null;
  ch.onerror = (reason) => { async = reason; };
  try { const v = await fn(ch); return ['ok', v === undefined ? null : v, async]; }
  catch (e) { return ['error', errOf(e), ch.closed]; }
}
const msgOf = (m, props = true) => m && Object.assign({
  body: m.bodyToString(), exchange: m.exchange, routingKey: m.routingKey,
  redelivered: m.redelivered, messageCount: m.messageCount === undefined ? null : m.messageCount,
}, props ? { properties: Object.fromEntries(Object.entries(m.properties).map(([k, v]) =>
  [k, v instanceof Date ? v.getTime() : v])) } : {});
const n = (s) => s + '.' + tag;

async function getAll(ch, q) {
  const got = [];
  for (;;) { const m = await ch.basicGet(q); if (!m) break; got.push(m.bodyToString()); }
  return got;
}

(async () => {
  const amqp = new AMQPClient(url);
  const conn = await amqp.connect();
  conn.onerror = () => {};
  out.tune = [conn.channelMax, conn.frameMax, conn.heartbeat];
  const ch = await conn.channel();

  // queues
  const durable = await ch.queueDeclare(n('durable'), { durable: true });
  out.durable = [durable.name === n('durable'), durable.messageCount, durable.consumerCount];
  const anon = await ch.queueDeclare('', { exclusive: true, durable: false });
  out.serverNamed = /^amq\.gen-[A-Za-z0-9_-]{22}$/.test(anon.name);
  out.autoDelete = await ch.queueDeclare(n('ad'), { autoDelete: true, durable: false });
  const args = await ch.queueDeclare(n('args'), { durable: true },
    { 'x-max-priority': 5, 'x-message-ttl': 60000, 'x-max-length': 10 });
  out.args = [args.messageCount, args.consumerCount];
  out.redeclareSame = await attempt(conn, (c) => c.queueDeclare(n('args'), { durable: true },
    { 'x-max-priority': 5, 'x-message-ttl': 60000, 'x-max-length': 10 }));
  out.passiveOk = await attempt(conn, (c) => c.queueDeclare(n('args'), { passive: true }));

  // exchanges of each type, bindings, routing
  for (const t of ['direct', 'fanout', 'topic', 'headers'])
    await ch.exchangeDeclare(n('x' + t), t, { durable: false, autoDelete: false });
  const route = {};
  for (const t of ['direct', 'fanout', 'topic', 'headers']) {
    const q = (await ch.queueDeclare(n('q' + t), { durable: false, autoDelete: false })).name;
    if (t === 'headers') await ch.queueBind(q, n('xheaders'), '', { 'x-match': 'any', a: 1, b: 'two' });
    else await ch.queueBind(q, n('x' + t), t === 'topic' ? 'a.*.c' : 'k');
  }
  await ch.basicPublish(n('xdirect'), 'k', 'd1'); await ch.basicPublish(n('xdirect'), 'other', 'd2');
  await ch.basicPublish(n('xfanout'), 'whatever', 'f1');
  await ch.basicPublish(n('xtopic'), 'a.b.c', 't1'); await ch.basicPublish(n('xtopic'), 'a.b.b.c', 't2');
  await ch.basicPublish(n('xheaders'), '', 'h1', { headers: { a: 1 } });
  await ch.basicPublish(n('xheaders'), '', 'h2', { headers: { b: 'two' } });
  await ch.basicPublish(n('xheaders'), '', 'h3', { headers: { a: 2 } });
  // exchange to exchange
  await ch.exchangeBind(n('xfanout'), n('xdirect'), 'e2e');
  await ch.basicPublish(n('xdirect'), 'e2e', 'e1');
  await sleep(100);
  for (const t of ['direct', 'fanout', 'topic', 'headers']) route[t] = await getAll(ch, n('q' + t));
  out.route = route;
  await ch.exchangeUnbind(n('xfanout'), n('xdirect'), 'e2e');
  await ch.basicPublish(n('xdirect'), 'e2e', 'e2');
  await sleep(100);
  out.afterUnbind = await getAll(ch, n('qfanout'));
  out.queueUnbind = await attempt(conn, (c) => c.queueUnbind(n('qdirect'), n('xdirect'), 'k'));
  out.exchangeDeleteIfUnused = await attempt(conn, (c) => c.exchangeDelete(n('xtopic'), { ifUnused: true }));
  out.exchangeDelete = await attempt(conn, (c) => c.exchangeDelete(n('xdirect')));
  out.exchangePassiveMissing = await attempt(conn, (c) => c.exchangeDeclare(n('xdirect'), 'direct', { passive: true }));
  out.exchangeTypeMismatch = await attempt(conn, (c) => c.exchangeDeclare(n('xfanout'), 'topic', { durable: false }));
  const weird = await new AMQPClient(url).connect();
  weird.onerror = () => {};
  out.exchangeUnknownType = await attempt(weird, (c) => c.exchangeDeclare(n('xweird'), 'weird'));
  out.exchangeUnknownTypeConn = weird.closed;
  out.exchangeAmq = await attempt(conn, (c) => c.exchangeDeclare('amq.' + tag, 'direct'));
  out.exchangeInternal = await attempt(conn, async (c) => {
    await c.exchangeDeclare(n('xint'), 'fanout', { internal: true, durable: false });
    await c.basicPublish(n('xint'), '', 'x');
    await sleep(200);
    return 'published';
  });

  // publish with properties, basic.get
  const props = { contentType: 'text/plain', contentEncoding: 'utf-8', headers: { s: 'str', i: 42, f: 1.5, b: true, nested: { x: 1 }, arr: [1, 'a'] },
    deliveryMode: 2, priority: 3, correlationId: 'corr', replyTo: 'reply.q', expiration: '600000',
    messageId: 'mid', timestamp: new Date(1700000000000), type: 'ty', userId: 'guest', appId: 'app' };
  await ch.basicPublish('', n('args'), 'withprops', props);
  await sleep(100);
  out.getProps = msgOf(await ch.basicGet(n('args'), { noAck: false }));
  out.getEmpty = await ch.basicGet(n('durable'));
  out.userIdWrong = await attempt(conn, async (c) => { await c.basicPublish('', n('args'), 'x', { userId: 'bob' }); await sleep(200); return c.closed; });
  out.badExpiration = await attempt(conn, async (c) => { await c.basicPublish('', n('args'), 'x', { expiration: 'soon' }); await sleep(200); return c.closed; });

  // priorities: published low to high, got high first
  for (let p = 0; p < 6; p++) await ch.basicPublish('', n('args'), 'p' + p, { priority: p });
  await sleep(100);
  out.byPriority = await getAll(ch, n('args'));

  // publisher confirms, mandatory returns
  const cch = await conn.channel();
  await cch.confirmSelect();
  const returned = [];
  cch.onReturn = (m) => returned.push([m.replyCode, m.replyText, m.exchange, m.routingKey, m.bodyToString()]);
  const tags = [];
  for (let i = 0; i < 5; i++) tags.push(await cch.basicPublish('', n('durable'), 'c' + i, { deliveryMode: 2 }));
  out.confirmTags = tags;
  out.mandatoryUnroutable = await cch.basicPublish('amq.direct', 'nobody.' + tag, 'lost', {}, true);
  out.unroutableNoMandatory = await cch.basicPublish('amq.direct', 'nobody.' + tag, 'lost2');
  await sleep(200);
  out.returned = returned;
  out.confirmPublishMissingExchange = await attempt(conn, async (c) => { await c.confirmSelect(); return await c.basicPublish(n('nox'), 'k', 'x'); });

  // consume with acks, prefetch, nack/reject
  const qch = await conn.channel();
  await qch.prefetch(2);
  const seen = [];
  let held = [];
  const consumer = await qch.basicConsume(n('durable'), { noAck: false, tag: 'ctag.' + tag }, (m) => {
    seen.push([m.bodyToString(), m.redelivered, m.consumerTag === 'ctag.' + tag]); held.push(m);
  });
  await sleep(300);
  out.prefetchHeld = seen.length;
  // c0: ack; c1: nack requeue; then the next ones
  await held[0].ack(); await held[1].nack(true);
  await sleep(300);
  out.afterNack = seen.map((s) => s.slice());
  held = held.slice(2);
  while (seen.length < 6) {
    const m = held.shift();
    if (m) { if (m.bodyToString() === 'c2') await m.reject(false); else await m.ack(); }
    await sleep(50);
  }
  for (const m of held) await m.ack();
  await sleep(200);
  out.consumed = seen;
  await consumer.cancel();
  out.countAfter = (await ch.queueDeclare(n('durable'), { passive: true })).messageCount;
  out.ackUnknownTag = await attempt(conn, async (c) => { await c.basicAck(999); await sleep(200); return c.closed; });
  const dbl = await new AMQPClient(url).connect();
  dbl.onerror = () => {};
  out.doubleConsumerTag = await attempt(dbl, async (c) => {
    await c.basicConsume(n('durable'), { tag: 'same' }, () => {});
    await c.basicConsume(n('durable'), { tag: 'same' }, () => {});
    return 'two';
  });

  // noAck consumer, generator consumer, cancel
  for (let i = 0; i < 3; i++) await ch.basicPublish('', n('durable'), 'n' + i);
  const gch = await conn.channel();
  const gen = await gch.basicConsume(n('durable'), { noAck: true });
  const noack = [];
  for await (const m of gen.messages) { noack.push([m.bodyToString(), m.deliveryTag]); if (noack.length === 3) break; }
  out.noAck = noack;
  out.countNoAck = (await ch.queueDeclare(n('durable'), { passive: true })).messageCount;

  // basic.recover, unacked redelivered on channel close
  for (let i = 0; i < 2; i++) await ch.basicPublish('', n('durable'), 'r' + i);
  const rch = await conn.channel();
  const rseen = [];
  await rch.basicConsume(n('durable'), { noAck: false }, (m) => rseen.push([m.bodyToString(), m.redelivered]));
  await sleep(200);
  await rch.basicRecover(true);
  await sleep(300);
  out.recover = rseen.slice();
  await rch.close();
  const after = [];
  for (;;) { const m = await ch.basicGet(n('durable')); if (!m) break; after.push([m.bodyToString(), m.redelivered]); }
  out.afterClose = after;

  // server cancel when the queue goes
  const sq = n('gone');
  await ch.queueDeclare(sq, { durable: false });
  const cconn = await new AMQPClient(url).connect();
  cconn.onerror = () => {};
  const sch = await cconn.channel();
  let schError = null;
  sch.onerror = (r) => { schError = r; };
  const sc = await sch.basicConsume(sq, { noAck: true }, () => {});
  const waited = sc.wait(3000).then(() => 'resolved', (e) => 'rejected: ' + errOf(e));
  out.deleteWithConsumer = await ch.queueDelete(sq);
  out.serverCancel = await waited;
  await sleep(300);
  out.afterServerCancel = [sch.closed, cconn.closed, schError];
  out.afterServerCancelUse = await sch.queueDeclare('', { exclusive: true }).then((ok) => 'declared', (e) => errOf(e));
  await cconn.close().catch(() => {});

  // purge / delete
  for (let i = 0; i < 4; i++) await ch.basicPublish('', n('ad'), 'x' + i);
  await sleep(100);
  out.purge = await ch.queuePurge(n('ad'));
  await ch.basicPublish('', n('ad'), 'y');
  await sleep(100);
  out.deleteIfEmpty = await attempt(conn, (c) => c.queueDelete(n('ad'), { ifEmpty: true }));
  out.deleteCount = await ch.queueDelete(n('ad'));
  out.deleteMissing = await attempt(conn, (c) => c.queueDelete(n('never')));
  out.purgeMissing = await attempt(conn, (c) => c.queuePurge(n('never')));

  // channel errors
  out.passiveMissing = await attempt(conn, (c) => c.queueDeclare(n('missing'), { passive: true }));
  out.inequivalent = await attempt(conn, (c) => c.queueDeclare(n('durable'), { durable: false }));
  out.inequivalentArgs = await attempt(conn, (c) => c.queueDeclare(n('args'), { durable: true }, { 'x-max-priority': 7 }));
  out.bindMissing = await attempt(conn, (c) => c.queueBind(n('missing'), 'amq.direct', 'k'));
  out.consumeMissing = await attempt(conn, (c) => c.basicConsume(n('missing'), {}, () => {}));
  out.getMissing = await attempt(conn, (c) => c.basicGet(n('missing')));
  out.publishMissingExchange = await attempt(conn, async (c) => { await c.basicPublish(n('nox'), 'k', 'x'); await sleep(200); return c.closed; });
  out.amqQueue = await attempt(conn, (c) => c.queueDeclare('amq.' + tag));
  const other = await new AMQPClient(url).connect();
  other.onerror = () => {};
  out.exclusiveOther = await attempt(other, (c) => c.queueDeclare(anon.name, { passive: true }));
  out.exclusiveOtherConsume = await attempt(other, (c) => c.basicConsume(anon.name, {}, () => {}));
  await other.close();
  out.channelAfterErrors = (await (await conn.channel()).queueDeclare(n('durable'), { passive: true })).messageCount;
  out.errorChannelReuse = await attempt(conn, async (c) => {
    try { await c.queueDeclare(n('missing'), { passive: true }); } catch (e) {}
    return await c.queueDeclare(n('durable'), { passive: true });
  });

  // transactions
  const tch = await conn.channel();
  await tch.txSelect();
  await tch.basicPublish('', n('durable'), 'tx1');
  out.txBefore = (await ch.queueDeclare(n('durable'), { passive: true })).messageCount;
  await tch.txRollback();
  await tch.basicPublish('', n('durable'), 'tx2');
  await tch.txCommit();
  await sleep(100);
  out.txAfter = await getAll(ch, n('durable'));
  out.txOnConfirm = await attempt(conn, async (c) => { await c.confirmSelect(); await c.txSelect(); return 'both'; });
  out.qosGlobal = await attempt(conn, (c) => c.basicQos(5, 0, true));
  const qconn = await new AMQPClient(url).connect();
  qconn.onerror = () => {};
  out.qosSize = await attempt(qconn, (c) => c.basicQos(5, 100, false));
  out.flow = await attempt(conn, (c) => c.basicFlow(true));
  out.updateSecret = await conn.updateSecret('guest', 'refresh').then(() => 'ok', (e) => errOf(e));

  // per-message TTL
  await ch.basicPublish('', n('durable'), 'ttl', { expiration: '50' });
  await sleep(300);
  out.expired = await ch.basicGet(n('durable'));

  // the session API: queue handles, subscribe, rpc over direct reply-to
  const session = await AMQPSession.connect(url, { reconnectInterval: 100 });
  const sqh = await session.queue(n('session'), { durable: false });
  await sqh.publish('s1', { deliveryMode: 2 });
  await sqh.publish('s2');
  const sgot = [];
  const sub = await sqh.subscribe({ prefetch: 1 }, (m) => { sgot.push(m.bodyString()); });
  for (let i = 0; i < 40 && sgot.length < 2; i++) await sleep(50);
  out.sessionSubscribe = sgot;
  await sub.cancel();
  await session.rpcServer(n('rpc'), async (m) => 'processed:' + m.bodyString());
  const reply = await session.rpcCall(n('rpc'), 'hello', { timeout: 3000 });
  out.rpc = reply.bodyToString();
  const rpc = await session.rpcClient();
  out.rpcMany = [];
  for (const b of ['a', 'b', 'c']) out.rpcMany.push((await rpc.call(n('rpc'), b)).bodyToString());
  await rpc.close();
  await sqh.delete();
  await session.stop();

  // big and empty bodies, a dead-letter exchange, exclusive consume, consumer priority
  const big = 'b'.repeat(50000);
  await ch.queueDeclare(n('big'), { durable: false });
  await ch.basicPublish('', n('big'), big);
  await ch.basicPublish('', n('big'), '');
  await ch.basicPublish('', n('big'), null);
  await sleep(100);
  const b1 = await ch.basicGet(n('big')), b2 = await ch.basicGet(n('big')), b3 = await ch.basicGet(n('big'));
  out.bodies = [b1.bodySize, b1.bodyToString() === big, b2.bodySize, b2.bodyToString(), b3.bodySize];
  await ch.exchangeDeclare(n('dlx'), 'fanout', { durable: false });
  await ch.queueDeclare(n('dead'), { durable: false });
  await ch.queueBind(n('dead'), n('dlx'), '');
  await ch.queueDeclare(n('live'), { durable: false }, { 'x-dead-letter-exchange': n('dlx') });
  await ch.basicPublish('', n('live'), 'doomed', { headers: { k: 'v' } });
  await sleep(100);
  const doomed = await ch.basicGet(n('live'), { noAck: false });
  await doomed.reject(false);
  await sleep(200);
  const dead = await ch.basicGet(n('dead'));
  const death = dead && dead.properties.headers['x-death'][0];
  out.deadLetter = dead && [dead.bodyToString(), dead.exchange, dead.routingKey, death.reason, death.queue, death.count, death.exchange, death['routing-keys'], dead.properties.headers['x-first-death-reason']];
  const ech = await conn.channel();
  await ech.basicConsume(n('big'), { exclusive: true }, () => {});
  out.exclusiveConsume = await attempt(conn, (c) => c.basicConsume(n('big'), {}, () => {}));
  out.consumeArgs = await attempt(conn, async (c) => { const k = await c.basicConsume(n('live'), { args: { 'x-priority': 10 } }, () => {}); return (await c.queueDeclare(n('live'), { passive: true })).consumerCount; });
  await ech.close();
  out.headersAll = await attempt(conn, async (c) => {
    await c.queueDeclare(n('hall'), { durable: false });
    await c.queueBind(n('hall'), 'amq.headers', '', { 'x-match': 'all', a: 1, b: 'two' });
    await c.basicPublish('amq.headers', '', 'both', { headers: { a: 1, b: 'two', c: 3 } });
    await c.basicPublish('amq.headers', '', 'one', { headers: { a: 1 } });
    await sleep(100);
    return await getAll(c, n('hall'));
  });
  const gch2 = await conn.channel();
  await ch.basicPublish('', n('big'), 'unacked-get');
  await sleep(100);
  const ug = await gch2.basicGet(n('big'), { noAck: false });
  await gch2.close();
  const ug2 = await ch.basicGet(n('big'));
  out.getUnackedClosed = [ug.bodyToString(), ug.redelivered, ug2 && ug2.bodyToString(), ug2 && ug2.redelivered];
  for (const q of ['big', 'dead', 'live', 'hall']) await ch.queueDelete(n(q));
  await ch.exchangeDelete(n('dlx'));

  // close
  await ch.queueDelete(n('durable')); await ch.queueDelete(n('args'));
  for (const t of ['direct', 'fanout', 'topic', 'headers']) await ch.queueDelete(n('q' + t));
  for (const t of ['fanout', 'topic', 'headers']) await ch.exchangeDelete(n('x' + t));
  await conn.close();
  out.closed = conn.closed;
  out.closeAgain = await conn.close().then(() => 'ok', (e) => errOf(e));
  console.log(JSON.stringify(out, null, 1).split(tag).join('T').replace(/amq\.gen-[A-Za-z0-9_-]{22}/g, 'amq.gen-X'));
  process.exit(0);
})().catch((e) => { console.error('FAILED', e); console.log(JSON.stringify(out, null, 1).split(tag).join('T').replace(/amq\.gen-[A-Za-z0-9_-]{22}/g, 'amq.gen-X')); process.exit(1); });
