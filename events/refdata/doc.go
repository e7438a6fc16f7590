// Package refdata holds the programme's reference data and the calendar type
// the rules use: the ten occupations and three levels (DOMAIN.md §2), the
// versioned table of management units with the 2025-11-06 change, and Date,
// a civil date without time of day or zone.
//
// # Management units
//
// Unit codes are stable ASCII identifiers "cq-<pinyin>" (e.g. cq-yuzhong for
// 渝中区); they are what events carry, never a name. The built-in table
// (Seed) is the starting point; the ledger extends or changes it with
// UnitDefined facts (Table.With).
//
// Modelling decisions:
//
//   - Every row of the seed except those touched by the 2025-11-06 change is
//     valid from 2020-01-01 (SeedEpoch), a floor before any date the
//     programme handles; earlier renamings of counties into districts are not
//     modelled.
//   - 江北区 (cq-jiangbei) and 渝北区 (cq-yubei) are districts valid until
//     2025-11-05 with successor 两江新区 (cq-liangjiang).
//   - 两江新区 is a district valid from 2025-11-06. Before that date it is not
//     a unit of this table (it was a national new area whose territory
//     belonged to 江北区, 渝北区 and 北碚区; the brief lists only two functional
//     zones), so a record dated earlier that names cq-liangjiang does not
//     resolve.
//   - The two functional zones 西部科学城重庆高新区 (cq-gaoxin) and 万盛经开区
//     (cq-wansheng) are units of kind FUNCTIONAL_ZONE, valid from SeedEpoch.
//
// History keeps old units (UnitAsOf answers for the date of the record);
// current roll-ups use successors (Current, RollUp).
package refdata
