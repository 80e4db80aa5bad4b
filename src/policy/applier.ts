// NetworkPolicy's names for the generic layout applier, which moved to src/nft/layout-applier.ts (one
// applier for every owned layout); the policy code switches to the generic names when it moves.
export {
  FULL_CHECK_MS,
  LayoutApplier as PolicyApplier,
  LayoutApplyError as PolicyApplyError,
  type ApplierHooks,
  type ApplyKind,
  type ApplyReport,
  type Layout as PolicyLayout,
  type LayoutInventory as PolicyInventory,
  type RebuildReason,
} from '../nft/layout-applier.ts';
