export { planShards } from './shards.ts';
