// notepack.io ships no types; these are the two functions the adapter uses.
declare module 'notepack.io' {
  export function encode(value: unknown): Buffer;
  export function decode<T = unknown>(buffer: Buffer | Uint8Array): T;
  const notepack: { encode: typeof encode; decode: typeof decode };
  export default notepack;
}
