/**
 * The OpenAPI 3.1 description of this API (`schemas/openapi.yaml`), served as JSON at
 * `/openapi.json`. Read and converted once per process; a missing or broken file is a packaging
 * bug and fails the control's start with the file's path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SCHEMAS_DIR } from '../../common/schema.js';

export const OPENAPI_FILE = join(SCHEMAS_DIR, 'openapi.yaml');

let cached: string | null = null;

/** The description as JSON text. */
export function openapiJson(): string {
  if (cached === null) {
    try {
      cached = `${JSON.stringify(parseYaml(readFileSync(OPENAPI_FILE, 'utf8')))}\n`;
    } catch (err) {
      throw new Error(`${OPENAPI_FILE}: cannot read the OpenAPI description: ${String(err)}`);
    }
  }
  return cached;
}
