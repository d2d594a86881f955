//! How costly a field's wildcards are to match, measured as EventBridge's engine
//! measures it (event-ruler's `MachineComplexityEvaluator`): the largest number of
//! wildcard-pattern prefixes that one input can match at the same time, summed over
//! the field's wildcard patterns. `"a*bb"` scores 3 (`"abb"` is matched by `a*`,
//! `a*b` and `a*bb`); `*` between repeated separators scores high, because an input
//! of separators keeps every prefix alive at once. EventBridge refuses a pattern
//! whose score is too high ("Rule is too complex").
//!
//! The score is found by walking the sets of positions the wildcard automaton can be
//! in (the subset construction), over the bytes the patterns use plus one byte they
//! do not, stopping as soon as the score reaches the cap.

use std::collections::{HashSet, VecDeque};

use super::value::Glob;

/// Highest score a field's wildcards may have. event-ruler leaves the limit to its
/// caller; EventBridge refuses `arn:aws:*:*:*:*:*` (five `*` between `:`, score 9)
/// and accepts four (score 7): see `docs/PATTERNS.md`.
pub(crate) const MAX_COMPLEXITY: usize = 8;

/// Position sets walked before giving up: past it the score is taken to be over any
/// cap (a set of patterns whose automaton has this many reachable states is far
/// beyond what EventBridge accepts).
const MAX_SETS: usize = 100_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    Star,
}

fn tokens(g: &Glob) -> Vec<Tok> {
    let mut out = Vec::new();
    for (i, piece) in g.pieces().iter().enumerate() {
        if i > 0 {
            out.push(Tok::Star);
        }
        out.extend(piece.iter().map(|&b| Tok::Byte(b)));
    }
    out
}

/// The score of `globs` together (duplicates counted once), or `cap` if it is at
/// least `cap`.
pub(crate) fn complexity(globs: &[&Glob], cap: usize) -> usize {
    let mut distinct: Vec<&Glob> = globs.to_vec();
    distinct.sort();
    distinct.dedup();
    let toks: Vec<Vec<Tok>> = distinct.iter().map(|g| tokens(g)).collect();
    // A state is (pattern, position): the pattern's first `position` tokens matched.
    let closure = |set: &mut Vec<(usize, usize)>| {
        let mut k = 0;
        while k < set.len() {
            let (g, p) = set[k];
            if toks[g].get(p) == Some(&Tok::Star) {
                set.push((g, p + 1));
            }
            k += 1;
        }
        set.sort_unstable();
        set.dedup();
    };
    let step = |set: &[(usize, usize)], c: u8| {
        let mut next = Vec::new();
        for &(g, p) in set {
            if toks[g].get(p) == Some(&Tok::Byte(c)) {
                next.push((g, p + 1));
            }
            // Just past a `*`: the `*` takes this byte too.
            if p > 0 && toks[g][p - 1] == Tok::Star {
                next.push((g, p));
            }
        }
        closure(&mut next);
        next
    };
    let mut alphabet: Vec<u8> = toks
        .iter()
        .flatten()
        .filter_map(|t| match t {
            Tok::Byte(b) => Some(*b),
            Tok::Star => None,
        })
        .collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    if let Some(other) = (0..=255u8).find(|b| alphabet.binary_search(b).is_err()) {
        alphabet.push(other);
    }
    let mut start: Vec<(usize, usize)> = (0..toks.len()).map(|g| (g, 0)).collect();
    closure(&mut start);
    let mut seen: HashSet<Vec<(usize, usize)>> = HashSet::new();
    let mut queue = VecDeque::from([start]);
    let mut best = 0;
    while let Some(set) = queue.pop_front() {
        for &c in &alphabet {
            let next = step(&set, c);
            if next.is_empty() || seen.contains(&next) {
                continue;
            }
            // Position 0 (nothing matched yet) is no prefix.
            best = best.max(next.iter().filter(|&&(_, p)| p > 0).count());
            if best >= cap || seen.len() >= MAX_SETS {
                return cap;
            }
            seen.insert(next.clone());
            queue.push_back(next);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::{complexity, Glob, MAX_COMPLEXITY};

    fn score(globs: &[&str]) -> usize {
        let globs: Vec<Glob> = globs.iter().map(|g| Glob::parse(g).unwrap()).collect();
        let refs: Vec<&Glob> = globs.iter().collect();
        complexity(&refs, 100)
    }

    /// The scores event-ruler's own tests give (`MachineComplexityEvaluatorTest`,
    /// cap 100), each named after its test.
    #[test]
    fn scores_agree_with_event_ruler() {
        let cases: &[(&[&str], usize)] = &[
            (&["*"], 1),                       // testEvaluateOnlyWildcard
            (&["*", "ab*c"], 3),               // ...OnlyWildcardWithWildcardMatch
            (&["abc"], 1),                     // ...WildcardPatternWithoutWildcards
            (&["*ab"], 2),                     // ...LeadingCharTwoTrailingCharactersDifferent
            (&["*aa"], 3),                     // ...LeadingCharTwoTrailingCharactersEqual
            (&["a*b"], 2),                     // ...OneWildcardSecondLastChar
            (&["aa*"], 2),                     // ...OneWildcardTrailingChar
            (&["a*bc"], 2),                    // ...NormalPositionTwoTrailingCharactersDifferent
            (&["a*bb"], 3),                    // ...NormalPositionTwoTrailingCharactersEqual
            (&["a*bcb"], 3),                   // ...NormalPositionThreeTrailingCharactersDifferent
            (&["a*bbb"], 4),                   // ...NormalPositionThreeTrailingCharactersEqual
            (&["*ab*ad"], 4),                  // ...TwoWildcardsLeadingCharAndNormalPosition
            (&["*ab*d"], 3),                   // ...TwoWildcardsLeadingCharAndSecondLastChar
            (&["*aba*"], 4),                   // ...TwoWildcardsLeadingCharAndTrailingChar
            (&["a*b*bb"], 5),                  // ...BothNormalPositionTwoTrailingCharactersEqual
            (&["a*b*cb"], 4), // ...BothNormalPositionTwoTrailingCharactersDifferent
            (&["a*b*cd"], 3), // ...DifferentLastCharUnique
            (&["a*b*b"], 4),  // ...TwoWildcardsNormalPositionAndSecondLastChar
            (&["a*bb*"], 4),  // ...TwoWildcardsNormalPositionAndTrailingChar
            (&["ab*b*"], 3),  // ...TwoWildcardsThirdLastCharAndTrailingChar
            (&["ab*c", "x*xx"], 3), // ...TwoWildcardsNoCommonPrefix
            (&["*abc", "*abcde"], 4), // ...BothLeadingOneIsPrefixOfOther
            (&["a*bcd", "ab*cd"], 4), // ...TwoWildcardsBothNormalPosition
            (&["a*bc", "a*bcde"], 4), // ...BothNormalPositionOneIsPrefixOfOther
            (&["a*aaa", "aa*aa"], 7), // ...BothNormalPositionAllSameCharacter
            (&["a*bc", "abc*d"], 4), // ...OneNormalPositionAndOneSecondLastCharacter
            (&["a*aaa", "aaa*a"], 6), // ...OneSecondLastCharacterAllSameCharacter
            (&["a*aax", "aaa*x"], 5), // ...AllSameCharacterButLast
            (&["a*bc", "abc*"], 4), // ...TwoWildcardsOneNormalPositionAndOneTrailing
            (&["a*aa", "aaa*"], 5), // ...OneTrailingAllSameCharacter
            (&["abc*", "abcde*"], 3), // ...BothTrailingCharOneIsPrefixOfOther
            (&["ab*cd", "ab*wx", "ab*yz"], 6), // ...ThreeWildcardsTransitionFromSameState
            (&["*ab*b*b*"], 7), // ...FourWildcardsLeadingCharNormalPosition...
            (&["*a*a*a*a*a*a*a*a*"], 17), // testEvaluateLongSequenceofWildcards
            (&["ab*c", "ab*c"], 2), // testEvaluateDuplicateWildcardPatterns
            (
                &["F*eatureFeature", "Fe*atureFeature", "Fea*tureFeature"],
                10,
            ), // ...WordEndingInSameLetter...
        ];
        for (globs, want) in cases {
            assert_eq!(score(globs), *want, "{globs:?}");
        }
        let exploder = [
            "aahed*", "aal*ii", "aargh*", "aarti*", "a*baca", "*abaci", "a*back", "ab*acs",
            "abaf*t", "*abaka", "ab*amp", "a*band", "*abase", "abash*", "abas*k", "ab*ate",
            "aba*ya", "abbas*", "abbed*", "ab*bes", "abbey*", "*abbot", "ab*cee", "abea*m",
            "abe*ar", "a*bele", "a*bers", "abet*s", "*abhor", "abi*de", "a*bies", "*abled",
        ];
        assert_eq!(score(&exploder), 45); // testEvaluateQuaminaExploder
                                          // testEvaluateBeyondMaxComplexity: capped, and quickly.
        assert_eq!(score(&["F*e*a*t*u*r*e*".repeat(2000).as_str()]), 100);
    }

    #[test]
    fn wildcards_between_separators_reach_the_limit_at_five() {
        assert_eq!(score(&["arn:aws:*:*:*:*"]), 7);
        assert_eq!(score(&["arn:aws:*:*:*:*:*"]), 9);
        assert!(score(&["arn:aws:*:*:*:*"]) <= MAX_COMPLEXITY);
        assert!(score(&["arn:aws:*:*:*:*:*"]) > MAX_COMPLEXITY);
        // Ordinary wildcards stay far below it.
        assert_eq!(score(&["*.png"]), 2);
        assert!(score(&["arn:aws:s3:::my-bucket/*/reports/*.csv"]) <= MAX_COMPLEXITY);
    }
}
