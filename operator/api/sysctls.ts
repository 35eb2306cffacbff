/**
 * Which sysctls a RealtimeCluster may ask for. Both the zod schema (render, the operator) and the
 * CRD's CEL rules (the API server) are built from these lists, so the two always agree.
 */

/**
 * Sysctls the kubelet allows without allowedUnsafeSysctls (Kubernetes docs, "Using sysctls in a
 * Kubernetes Cluster"), with the release that made each safe. Newer entries fail on older
 * kubelets, so only ask for what the user set.
 */
export const SAFE_SYSCTLS: readonly string[] = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', // 1.18
  'net.ipv4.ip_unprivileged_port_start', // 1.22
  'net.ipv4.ip_local_reserved_ports', // 1.27
  'net.ipv4.tcp_keepalive_time', // 1.29
  'net.ipv4.tcp_fin_timeout', // 1.29
  'net.ipv4.tcp_keepalive_intvl', // 1.29
  'net.ipv4.tcp_keepalive_probes', // 1.29
  'net.ipv4.tcp_rmem', // 1.32
  'net.ipv4.tcp_wmem', // 1.32
];

/**
 * net.* keys the kernel keeps host-wide (registered for the initial network namespace only, e.g.
 * net/core/sysctl_net_core.c's net_core_table): a pod cannot set them in its own namespace, and
 * a privileged container that could would retune the whole node.
 */
export const HOST_WIDE_NET_SYSCTLS: readonly string[] = [
  'net.core.busy_poll',
  'net.core.busy_read',
  'net.core.default_qdisc',
  'net.core.dev_weight',
  'net.core.dev_weight_rx_bias',
  'net.core.dev_weight_tx_bias',
  'net.core.flow_limit_cpu_bitmap',
  'net.core.flow_limit_table_len',
  'net.core.gro_normal_batch',
  'net.core.high_order_alloc_disable',
  'net.core.max_skb_frags',
  'net.core.message_burst',
  'net.core.message_cost',
  'net.core.netdev_budget',
  'net.core.netdev_budget_usecs',
  'net.core.netdev_max_backlog',
  'net.core.netdev_rss_key',
  'net.core.netdev_tstamp_prequeue',
  'net.core.rmem_default',
  'net.core.rmem_max',
  'net.core.rps_sock_flow_entries',
  'net.core.warnings',
  'net.core.wmem_default',
  'net.core.wmem_max',
  'net.ipv4.inet_peer_maxttl',
  'net.ipv4.inet_peer_minttl',
  'net.ipv4.inet_peer_threshold',
  'net.ipv4.tcp_mem',
  'net.ipv4.udp_mem',
  'net.netfilter.nf_conntrack_max',
  'net.nf_conntrack_max',
];

/** The shape of a sysctl key a pod may set: net.<group>.<name>... */
export const NET_SYSCTL_PATTERN = /^net\.[a-z0-9_]+(\.[a-z0-9_-]+)+$/;

export const NAMESPACED_SYSCTL_MESSAGE =
  'must be a sysctl of the pod network namespace (net.*, and not one the kernel keeps host-wide such as net.core.rmem_max); vm.*, fs.* and kernel.* keys would retune the node';

export function isPodNetSysctl(key: string): boolean {
  return NET_SYSCTL_PATTERN.test(key) && !HOST_WIDE_NET_SYSCTLS.includes(key);
}

/** CEL list literal of strings. */
export function celList(values: readonly string[]): string {
  return `[${values.map((v) => `'${v}'`).join(', ')}]`;
}

/** CEL map literal of strings. */
export function celMap(values: Readonly<Record<string, string>>): string {
  return `{${Object.entries(values)
    .map(([k, v]) => `'${k}': '${v}'`)
    .join(', ')}}`;
}
