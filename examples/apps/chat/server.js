// The chat server: socketfleet's createServer() reads the operator's config (mounted at
// $SOCKETFLEET_CONFIG) and returns a standard Socket.IO Server; the rest is the app.
import { createServer } from '../../../dist/server-image/src/index.js';
import { chat } from './chat.js';

const { io, ops } = await createServer();
chat(io, ops);
// Drains on SIGTERM within the pod's grace period, like the relay image.
process.exit(await ops.untilSignal());
