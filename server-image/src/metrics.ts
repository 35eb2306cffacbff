import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the server exports; one registry per server so tests can run several in one process. */
export interface ServerMetrics {
  registry: Registry;
  connectedClients: Gauge;
  rooms: Gauge;
  eventsIn: Counter<'event'>;
  eventsOut: Counter;
  rejectedEvents: Counter<'reason'>;
  broadcasts: Counter<'shard'>;
  busMessagesIn: Counter;
  busMessagesDropped: Counter;
  publishesSkipped: Counter;
  roomHandshakes: Counter<'result'>;
  publishesLost: Counter<'shard'>;
  redisErrors: Counter<'shard'>;
  shardUp: Gauge<'shard'>;
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
      help: 'Rooms with at least one member on this server (private socket rooms excluded).',
      registers,
    }),
    eventsIn: new Counter({
      name: 'socketfleet_events_in_total',
      help: 'Events received from clients, by event name (unknown names are counted as "unknown").',
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
    broadcasts: new Counter({
      name: 'socketfleet_broadcasts_total',
      help: 'Messages published to each Redis shard.',
      labelNames: ['shard'],
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
    publishesLost: new Counter({
      name: 'socketfleet_publishes_lost_total',
      help: 'Publishes that did not reach a Redis shard (shard down or error); other servers missed them.',
      labelNames: ['shard'],
      registers,
    }),
    redisErrors: new Counter({
      name: 'socketfleet_redis_errors_total',
      help: 'Errors reported by the connections to each Redis shard.',
      labelNames: ['shard'],
      registers,
    }),
    shardUp: new Gauge({
      name: 'socketfleet_redis_shard_up',
      help: '1 while both connections to the shard are ready, else 0.',
      labelNames: ['shard'],
      registers,
    }),
    draining: new Gauge({
      name: 'socketfleet_draining',
      help: '1 once the server received SIGTERM and is moving its clients away.',
      registers,
    }),
  };
}
