/** Ports shared by the builders and the server image contract. */
export const SOCKETIO_PORT = 3000;
export const OPS_PORT = 9090;
export const REDIS_PORT = 6379;
/** nginx listens unprivileged so it can run as a non-root user. */
export const GATEWAY_PORT = 8080;
export const SOCKETIO_PATH = '/socket.io';
/** nginx's probe listener: plain HTTP even when the gateway port expects PROXY protocol. */
export const GATEWAY_HEALTH_PORT = 8081;
export const GATEWAY_LIVENESS_PATH = '/healthz';
export const GATEWAY_READINESS_PATH = '/readyz';
