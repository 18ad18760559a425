// Rewards module.
