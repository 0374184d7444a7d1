/**
 * The ValueTable contract (value-table-contract.ts) against ValueStore with the native and the
 * TypeScript kernels, and against CudaValueTable on a GPU (elsewhere it prints why it did not run;
 * cuda-emulated.test.ts runs the CUDA table's own code over an emulated addon everywhere).
 */
import { CudaValueTable, ValueStore, cudaStatus, nativeAvailable } from './index';
import { valueTableContract } from './value-table-contract';

const native = nativeAvailable();
for (const impl of ['native', 'ts'] as const) {
  valueTableContract({
    name: `ValueStore (${impl} kernels)`,
    skip: impl === 'native' && !native.available ? `native kernels not available: ${native.reason}` : null,
    create: (opts) => ValueStore.create({ ...opts, impl }),
    load: (file) => ValueStore.load(file, { impl }),
    tol: 1e-6,
  });
}

const cuda = cudaStatus();
valueTableContract({
  name: 'CudaValueTable',
  skip: cuda.available ? null : cuda.reason,
  create: (opts) => CudaValueTable.create(opts),
  load: (file) => CudaValueTable.load(file),
  tol: 1e-5,
});
