// Modules that most commands never use, loaded on first use: what the bundle requires at its top
// runs before the listings start, on every command. node:crypto (a backup's checksums, one
// temporary name for nft), node:readline (the prompt) and yaml (a YAML profile file) were 1 in
// 20 of the instructions Node executes to start `cni-sweep plan` (callgrind: 808 M -> 770 M).
// Synchronous require: the bundle is CommonJS.

export const lazyCrypto = () => require('node:crypto') as typeof import('node:crypto');
export const lazyReadline = () => require('node:readline') as typeof import('node:readline');
export const lazyYaml = () => require('yaml') as typeof import('yaml');

/** Hex SHA-256 of a file's bytes, as the backup's manifest records them. */
export const sha256 = (data: Buffer | string): string => lazyCrypto().createHash('sha256').update(data).digest('hex');
