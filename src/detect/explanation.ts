/**
 * Per-field explanations in the shape of Kinesis Data Analytics'
 * RANDOM_CUT_FOREST_WITH_EXPLANATION:
 *
 *   { "<field>": { "ATTRIBUTION_SCORE": 2.1, "STRENGTH": 0.93, "DIRECTION": "HIGH" }, ... }
 *
 * - ATTRIBUTION_SCORE: the field's share of the anomaly score, high + low attribution.
 *   With shingling the forest attributes each shingle block separately; a field's
 *   score sums its coordinate over all blocks, so the field scores still add up to the
 *   record's anomaly score (as KDA documents), up to rounding.
 * - DIRECTION: "HIGH" when the field's high part is at least its low part, else "LOW".
 * - STRENGTH (our definition; KDA's is not specified): the field's fraction of the
 *   record's total attribution, in [0, 1] (0 when the total is 0, as during warm-up).
 *   It ranks fields within a record independently of the score's scale.
 */

export type Direction = 'HIGH' | 'LOW';

export interface FieldExplanation {
  ATTRIBUTION_SCORE: number;
  STRENGTH: number;
  DIRECTION: Direction;
}

export type Explanation = Record<string, FieldExplanation>;

/**
 * Builds the explanation of one record from its attribution vectors: `high` and `low`
 * hold `fields.length × shingleSize` values from `offset`, oldest shingle block first.
 */
export function explain(
  fields: readonly string[],
  shingleSize: number,
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  offset = 0,
): Explanation {
  const b = fields.length;
  const fieldHigh = new Float64Array(b);
  const fieldLow = new Float64Array(b);
  for (let block = 0; block < shingleSize; block++) {
    const base = offset + block * b;
    for (let j = 0; j < b; j++) {
      fieldHigh[j] += high[base + j]!;
      fieldLow[j] += low[base + j]!;
    }
  }
  let total = 0;
  for (let j = 0; j < b; j++) total += fieldHigh[j]! + fieldLow[j]!;
  // Object.create(null): a field named "__proto__" must become a key, not a prototype.
  const out = Object.create(null) as Explanation;
  for (let j = 0; j < b; j++) {
    const score = fieldHigh[j]! + fieldLow[j]!;
    out[fields[j]!] = {
      ATTRIBUTION_SCORE: score,
      STRENGTH: total > 0 ? score / total : 0,
      DIRECTION: fieldHigh[j]! >= fieldLow[j]! ? 'HIGH' : 'LOW',
    };
  }
  return out;
}
