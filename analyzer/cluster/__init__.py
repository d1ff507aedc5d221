"""The collector on every core: shards in their own processes, their live state meeting over
NATS JetStream.

Docs: https://docs.nats.io/nats-concepts/jetstream (streams, limits),
https://docs.nats.io/nats-concepts/jetstream/consumers (durable pull consumers, explicit
acks, redelivery), https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive
(publish acks, ``Nats-Msg-Id`` de-duplication), https://nats-io.github.io/nats.py/ (the
client).

Processes (``analyzer collect -c cfg`` with a ``[cluster]`` section; ``supervisor.py``):

* **one per shard** (``shard.py``): the feeds and symbols of its shard (``config.shards``),
  their books, REST queues and store writer, exactly as the one-process collector runs them
  (``analyzer.collector``), minus the analytics. Every ``[analytics] interval_seconds`` it
  cuts the analysis window of each of its books (the costly, per-book part of the analytics,
  which needs the live book) and publishes its **state** (``state.py``): the windows, the
  books' sync status and times, the latest tickers, open interest and instrument definitions,
  and the funding marks new since the last state; a few kB a book, zstd-compressed, split in
  parts under the server's message limit.
* **one analytics process** (``analytics.py``): a durable pull consumer of every shard's
  states; each tick it evaluates the latest state of every shard together with the one
  pipeline of the one-process collector (liquidity, basis, cross-venue figures, anomalies,
  carry candidates, opportunities; ``analyzer.analytics.pipeline``) and values the
  ``[portfolio]`` file, stores the rows and the windows' ``book_snapshots``, and only then
  acknowledges the messages it applied. One row per state applied goes to the
  ``shard_states`` table in the same flush, so a restarted analytics process skips what it had
  applied (a shard's states are numbered ``(epoch, seq)``), and a redelivery is neither lost
  nor applied twice.
* **the supervisor** (this command's own process): prepares the store once, starts a
  ``nats-server`` on loopback unless ``[cluster] nats_url`` names one, creates the stream,
  starts the children, restarts one that dies (1 s doubling to
  ``restart_backoff_max_seconds``), serves every child's metrics on the one ``[metrics]`` port
  with a ``shard`` label (``metrics.py``), and on SIGTERM or Ctrl-C stops them all (each
  flushes its store), then the server.

Why NATS JetStream and not a socket of our own: the stream keeps what a consumer has not
acknowledged (a killed analytics process resumes from its durable consumer), de-duplicates a
retried publish by its message id, bounds what it keeps (``state_max_age_seconds``,
``state_max_bytes``), and spans machines: the same configuration with ``nats_url`` set and
``--only`` naming the processes of each machine spreads the shards over several. The store is
a directory the shards share (``analyzer.store``: each process writes, compacts and cleans up
only its own segments); on several machines it must be one shared filesystem, or each machine
keeps its own.

What does not go over NATS: trades, quotes, tickers and every other event are stored by the
shard that received them (the analytics process reads the store for the trend, as the
one-process collector does).
"""
