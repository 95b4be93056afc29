import { mkdir, mkdtemp, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SecretMount {
  /** The temporary directory (remove it after the test). */
  dir: string;
  /** The file the service is given, `<dir>/<name>`. */
  file: string;
  /** Publishes a new version of the file, as the kubelet does. */
  write(text: string): Promise<void>;
}

/**
 * A directory laid out as the kubelet mounts a Secret: `<name>` → `..data/<name>`, `..data` → a
 * directory per version. A new version is written into a new directory and `..data` is swapped
 * to it atomically (a rename of a new symlink), so the file's path never changes and a watch on
 * the file itself sees nothing. Starts with an empty version.
 */
export async function createSecretMount(name = 'api-keys'): Promise<SecretMount> {
  const dir = await mkdtemp(path.join(tmpdir(), 'oag-secret-'));
  let version = 0;
  const write = async (text: string): Promise<void> => {
    version += 1;
    const data = `..2026_12_06_00_00_00.${version}`;
    await mkdir(path.join(dir, data));
    await writeFile(path.join(dir, data, name), text);
    await symlink(data, path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  await write('');
  await symlink(`..data/${name}`, path.join(dir, name));
  return { dir, file: path.join(dir, name), write };
}
