// The DIY hardware-store thesaurus the local model uses: groups of terms shoppers use interchangeably — trade
// and generic names ("crescent wrench" ~ "adjustable wrench"), regional and colloquial names ("spigot" ~
// "sillcock"), abbreviations ("gfci" ~ "ground fault"), feature words ("cordless" ~ "battery powered").
// Written for zava-mcp from general hardware-store vocabulary and the catalog's product types, by people who
// did not see the labelled evaluation sets or the ranker's results (their briefs named a few example terms; see
// BENCHMARKS.md for which were also queries). A term may sit in groups of both parts.
import { DIY_THESAURUS_BUILDING } from './diy-thesaurus-building.js';
import { DIY_THESAURUS_TRADES } from './diy-thesaurus-trades.js';

export const DIY_THESAURUS: readonly (readonly string[])[] = [...DIY_THESAURUS_TRADES, ...DIY_THESAURUS_BUILDING];
