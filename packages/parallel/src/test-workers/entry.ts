/** What the test workers import: the package's door, so they exercise the public API. */
export { groupData, openGroup, reportResult } from '../index';
