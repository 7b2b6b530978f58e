/** The backend contract suite against the sqlite backend on real files (default settings). */
import { join } from 'node:path';
import { create } from '../../src/backends/sqlite.js';
import { runBackendContract } from '../support/backend-contract.js';
import { tempDir, testContext } from './support/context.js';

runBackendContract(
  'sqlite',
  async () => {
    const { dir, remove } = tempDir();
    const conf = { module: 'aimm-store/backends/sqlite', path: join(dir, 'nested', 'models.db') };
    return {
      backend: await create(conf, testContext()),
      reopen: () => create(conf, testContext()),
      cleanup: async () => remove(),
    };
  },
  { acks: ['committed'], contentTypes: true },
);
