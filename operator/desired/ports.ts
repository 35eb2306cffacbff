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
/** nginx's HTTPS listener when spec.gateway.tls is set. */
export const GATEWAY_TLS_PORT = 8443;
/** nginx's stub_status, on 127.0.0.1 inside the gateway pod, for the exporter sidecar. */
export const GATEWAY_STATUS_PORT = 8082;
export const GATEWAY_STATUS_PATH = '/stub_status';
/** Exporter sidecars' metrics ports (their upstream defaults). */
export const NGINX_EXPORTER_PORT = 9113;
export const REDIS_EXPORTER_PORT = 9121;
/** The gateway sync sidecar's /metrics and /rejection (plain HTTP, read by the operator). */
export const GATEWAY_SYNC_PORT = 9114;
/**
 * UDP on the gateway pod's loopback: nginx sends its emerg-level errors here by syslog, so the
 * sidecar hears why nginx refused a configuration.
 */
export const GATEWAY_SYNC_LOG_PORT = 5140;
