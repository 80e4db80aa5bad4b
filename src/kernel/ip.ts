// Only for src/nft/objects.ts and src/policy/cidr.ts (being moved by other branches): they switch to
// src/net/ip.ts at the merge and this file goes.
export * from '../net/ip.ts';
