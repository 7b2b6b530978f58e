/** The backend contract suite against the in-memory test backend (the suite's own sanity check). */

import { runBackendContract } from '../support/backend-contract.js';
import { MemoryBackend } from '../support/memory-backend.js';

runBackendContract(
  'memory',
  async () => ({
    backend: new MemoryBackend(),
    cleanup: async () => {},
  }),
  { acks: ['committed'] },
);
