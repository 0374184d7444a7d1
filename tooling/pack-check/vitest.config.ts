import { mnemoVitest } from '@mnemo/vitest-config';
export default mnemoVitest();
