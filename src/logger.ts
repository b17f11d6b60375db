import { pino, stdSerializers, type Logger } from 'pino';

/** JSON lines on stdout (dockerd keeps a managed plugin's stdout in its log). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'mynet' }, serializers: { err: stdSerializers.err } });
}
