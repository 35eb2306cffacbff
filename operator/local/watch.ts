import { watchFile, unwatchFile, readFileSync } from 'node:fs';

/**
 * Calls onChange with the new text whenever the file's content changes. Polling (fs.watchFile)
 * survives editors that save by writing a new file and renaming it over the old one.
 */
export function watchText(
  path: string,
  onChange: (text: string) => void,
  intervalMs = 500,
): () => void {
  let last = safeRead(path);
  const listener = (): void => {
    const text = safeRead(path);
    if (text === undefined || text === last) return;
    last = text;
    onChange(text);
  };
  watchFile(path, { interval: intervalMs, persistent: true }, listener);
  return () => unwatchFile(path, listener);
}

function safeRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
