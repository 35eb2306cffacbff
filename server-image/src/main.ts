import { EXIT_CONFIG, loadConfig } from './load-config.js';
import { createLogger } from './logger.js';
import { relayApp } from './relay.js';
import { createServer } from './server.js';
import { SESSION_ADDRESS_ENV } from './session-tag.js';

/** The image's entrypoint: load config, run the relay, drain on SIGTERM. Returns the exit code. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`config: ${problem}\n`);
    return EXIT_CONFIG;
  }
  const { config } = loaded;
  const logger = createLogger(config.logLevel);
  logger.info(
    {
      source: loaded.source,
      redisAuth: loaded.redisPassword !== undefined,
      redisUser: loaded.redis.username ?? 'default',
      redisTls: loaded.redis.tls !== undefined,
      clientAuth: config.clientAuth,
    },
    'config loaded',
  );

  process.on('unhandledRejection', (reason) => {
    logger.error(
      { err: reason instanceof Error ? reason.message : String(reason) },
      'unhandled rejection',
    );
  });

  try {
    const { io, ops } = await createServer({
      config,
      redisPassword: loaded.redisPassword,
      redisUsername: loaded.redis.username,
      redisTls: loaded.redis.tls,
      clientAuthKey: loaded.clientAuthKey,
      sessionAddress: env[SESSION_ADDRESS_ENV] || undefined,
      logger,
    });
    relayApp(io, ops);
    return await ops.untilSignal();
  } catch (err) {
    logger.fatal(
      { err: err instanceof Error ? err.message : String(err) },
      'cannot start the server',
    );
    return 1;
  }
}
