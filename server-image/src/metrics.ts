import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the server exports; one registry per server so tests can run several in one process. */
export interface ServerMetrics {
  registry: Registry;
  connectedClients: Gauge;
  rooms: Gauge;
  sessions: Counter;
  namespaces: Gauge;
  eventsIn: Counter<'event'>;
  eventsOut: Counter;
  rejectedEvents: Counter<'reason'>;
  busPublishes: Counter;
  busPublishFailed: Counter<'reason'>;
  busPublishesHeld: Gauge;
  busPublishRepaired: Counter;
  busPublishShort: Counter;
  busDuplicatesDropped: Counter;
  busSequenceGaps: Counter;
  busSequenceGapsFilled: Counter;
  busMessagesIn: Counter;
  busMessagesDropped: Counter;
  publishesSkipped: Counter;
  roomHandshakes: Counter<'result'>;
  redisErrors: Counter<'source'>;
  recoveryRestores: Counter<'result'>;
  recoveryReplayed: Counter;
  recoveryErrors: Counter<'kind'>;
  redisReady: Gauge;
  draining: Gauge;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  // Includes nodejs_eventloop_lag_seconds (and its percentiles) and nodejs_heap_size_used_bytes.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const registers = [registry];
  return {
    registry,
    connectedClients: new Gauge({
      name: 'socketfleet_connected_clients',
      help: 'Socket.IO clients connected to this server.',
      registers,
    }),
    rooms: new Gauge({
      name: 'socketfleet_rooms',
      help: 'Rooms with at least one member on this server, over every namespace (private socket rooms excluded).',
      registers,
    }),
    namespaces: new Gauge({
      name: 'socketfleet_namespaces',
      help: 'Namespaces that exist on this server (static ones, and dynamic ones a client connected to).',
      registers,
    }),
    sessions: new Counter({
      name: 'socketfleet_sessions_total',
      help: 'New client sessions (engine.io handshakes) this server accepted.',
      registers,
    }),
    eventsIn: new Counter({
      name: 'socketfleet_events_in_total',
      help: 'Events received from clients in every namespace, by event name (the first 100 names seen; later ones are counted as "other").',
      labelNames: ['event'],
      registers,
    }),
    eventsOut: new Counter({
      name: 'socketfleet_events_out_total',
      help: 'Broadcast packets written to local clients.',
      registers,
    }),
    rejectedEvents: new Counter({
      name: 'socketfleet_rejected_events_total',
      help: 'Client events refused with an error acknowledgement, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    busPublishes: new Counter({
      name: 'socketfleet_bus_publishes_total',
      help: 'Messages published to the Redis Cluster (broadcasts, room handshakes, cluster requests).',
      registers,
    }),
    busPublishFailed: new Counter({
      name: 'socketfleet_bus_publish_failed_total',
      help: 'Publishes that never reached Redis, so other servers missed them: redis-error once the hold through a failover is over, hold-queue-full when too many already wait.',
      labelNames: ['reason'],
      registers,
    }),
    busPublishRepaired: new Counter({
      name: 'socketfleet_bus_publish_repaired_total',
      help: 'Room broadcasts that first reached fewer member servers than the room has (a failover or slot move in progress) and reached them all when sent again.',
      registers,
    }),
    busPublishShort: new Counter({
      name: 'socketfleet_bus_publish_short_total',
      help: "Member servers that a room broadcast never reached (Redis answered with fewer receivers than the room has member servers, and resending did not help or could not): each is a message lost for that server's members.",
      registers,
    }),
    busDuplicatesDropped: new Counter({
      name: 'socketfleet_bus_duplicates_dropped_total',
      help: 'Resent room broadcasts that had already been delivered here and were dropped.',
      registers,
    }),
    busSequenceGaps: new Counter({
      name: 'socketfleet_bus_sequence_gaps_total',
      help: "Another server's room broadcasts found missing here by their per-room number (counted when a later one arrives); minus socketfleet_bus_sequence_gaps_filled_total, the broadcasts this server's members of those rooms lost, whatever lost them.",
      registers,
    }),
    busSequenceGapsFilled: new Counter({
      name: 'socketfleet_bus_sequence_gaps_filled_total',
      help: 'Room broadcasts counted missing that arrived later (a resend or a late delivery).',
      registers,
    }),
    busPublishesHeld: new Gauge({
      name: 'socketfleet_bus_publishes_held',
      help: 'Publishes sent to Redis and not answered yet; grows while a slot has no reachable master (held up to the hold time).',
      registers,
    }),
    busMessagesIn: new Counter({
      name: 'socketfleet_bus_messages_in_total',
      help: 'Messages from other servers received over Redis (only rooms this server has members in, plus cluster requests).',
      registers,
    }),
    busMessagesDropped: new Counter({
      name: 'socketfleet_bus_messages_dropped_total',
      help: 'Compressed broadcasts from other servers that could not be inflated (corrupt, or over 32 MiB) and were dropped.',
      registers,
    }),
    publishesSkipped: new Counter({
      name: 'socketfleet_publishes_skipped_total',
      help: 'Room broadcasts that stayed on this server because no other server has members in the room.',
      registers,
    }),
    roomHandshakes: new Counter({
      name: 'socketfleet_room_handshakes_total',
      help: 'Room membership handshakes by result (ready, timeout, failed); only ready rooms may skip Redis.',
      labelNames: ['result'],
      registers,
    }),
    redisErrors: new Counter({
      name: 'socketfleet_redis_errors_total',
      help: "Errors reported by the Redis Cluster client, by source (node: one node's connection; cluster: the client).",
      labelNames: ['source'],
      registers,
    }),
    recoveryRestores: new Counter({
      name: 'socketfleet_recovery_restores_total',
      help: 'Reconnects that asked for connection-state recovery, by result (recovered, expired, unknown-offset, gap, too-long, error).',
      labelNames: ['result'],
      registers,
    }),
    recoveryReplayed: new Counter({
      name: 'socketfleet_recovery_replayed_packets_total',
      help: "Packets replayed to recovered sockets from the rooms' logs.",
      registers,
    }),
    recoveryErrors: new Counter({
      name: 'socketfleet_recovery_errors_total',
      help: 'Recovery writes that failed, by kind (journal: a delivery batch went out unjournaled; session: a session was not saved).',
      labelNames: ['kind'],
      registers,
    }),
    redisReady: new Gauge({
      name: 'socketfleet_redis_cluster_ready',
      help: '1 while the Redis Cluster client has a slot map and connections, else 0 (rooms on healthy slots may still be served).',
      registers,
    }),
    draining: new Gauge({
      name: 'socketfleet_draining',
      help: '1 once the server received SIGTERM and is moving its clients away.',
      registers,
    }),
  };
}
