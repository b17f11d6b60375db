/** mynet's own nftables table: everything mynet writes to nft is inside it, nothing outside. */
export const TABLE = 'inet mynet';
