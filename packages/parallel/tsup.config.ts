export { default } from '@mnemo/tsup-config';
