//! Regular expressions the host compiles and keeps for a guest (the
//! contract's `pattern`), and the search of a held response's body with one.
//!
//! Searching in the host keeps bodies out of guests: a body copied into a
//! guest grows its linear memory, which never shrinks. It also keeps a regex
//! engine out of every guest that checks bodies; each instance holds its own
//! copy of its component's data, and an engine's tables and messages are
//! kilobytes of it.
//!
//! A host call is not interrupted by the call's deadline, so the search
//! must be cheap whatever the guest asks for: it runs a lazy DFA only, with
//! a cache of fixed size that gives up when the pattern makes it build
//! states faster than it scans bytes. A full regex engine would fall back
//! to an NFA simulation there, which on a 1 MiB body and a pattern such as
//! `(.{0,30}[ab]){3}x` takes a second of a worker thread; the lazy DFA
//! stops within milliseconds and the guest is told why.

use std::cell::RefCell;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchErrorKind};
use wasmtime::component::Resource;

use super::bindings::sandport::connector::http_client;
use super::state::{GuestState, HeldResponse, NoRoom};

/// Largest compiled program (Thompson NFA) of one pattern.
const PROGRAM_LIMIT: usize = 64 * 1024;
/// The lazy DFA's cache of states for one pattern.
const CACHE_CAPACITY: usize = 128 * 1024;
/// Times the cache may be cleared in one search before it gives up, and
/// the bytes it must scan per state built to count as making progress.
const CACHE_CLEARS: usize = 3;
const BYTES_PER_STATE: usize = 10;

/// A compiled pattern while the guest holds its handle.
pub struct HeldPattern {
    dfa: DFA,
    /// One instance searches with it at a time; the cell lets it be
    /// borrowed beside the response from the same table.
    cache: RefCell<Cache>,
    /// What it counts against the instance's memory limit.
    charge: usize,
}

impl HeldPattern {
    /// `source` compiled under the caps above, or why not, in the guest's
    /// terms.
    fn compile(source: &str) -> Result<HeldPattern, String> {
        let nfa = thompson::Compiler::new()
            // Bytes, not text: ASCII classes, and `.` matches any byte.
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(thompson::Config::new().nfa_size_limit(Some(PROGRAM_LIMIT)))
            .build(source)
            .map_err(|error| compile_error(&error))?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .cache_capacity(CACHE_CAPACITY)
                    .minimum_cache_clear_count(Some(CACHE_CLEARS))
                    .minimum_bytes_per_state(Some(BYTES_PER_STATE)),
            )
            .build_from_nfa(nfa)
            .map_err(|error| format!("the regex cannot be compiled: {error}"))?;
        let charge = dfa.get_nfa().memory_usage() + CACHE_CAPACITY;
        let cache = RefCell::new(dfa.create_cache());
        Ok(HeldPattern { dfa, cache, charge })
    }

    /// Whether the pattern matches somewhere in `haystack`; Err if the
    /// search gave up.
    fn is_match(&self, haystack: &[u8]) -> Result<bool, String> {
        let input = Input::new(haystack).earliest(true);
        let mut cache = self.cache.borrow_mut();
        match self.dfa.try_search_fwd(&mut cache, &input) {
            Ok(found) => Ok(found.is_some()),
            Err(error) => Err(match error.kind() {
                MatchErrorKind::GaveUp { offset } => format!(
                    "the search gave up at byte {offset} of the body: the pattern needs more states on this body than the host keeps for it ({}); bounded repetitions such as `.{{0,30}}` do this, simplify the pattern",
                    sandport_config::format_size(CACHE_CAPACITY as u64)
                ),
                _ => format!("the search failed: {error}"),
            }),
        }
    }
}

/// Why a pattern did not compile, in one line: the syntax error and the
/// character it is at, or the size cap and what to change.
fn compile_error(error: &thompson::BuildError) -> String {
    use std::error::Error as _;
    if error.size_limit().is_some() {
        return format!(
            "the regex compiles to more than the {} the host allows; simplify it (fewer or smaller repetitions)",
            sandport_config::format_size(PROGRAM_LIMIT as u64)
        );
    }
    let at = |kind: &dyn std::fmt::Display, span: &regex_syntax::ast::Span| {
        format!("{kind} at character {}", span.start.column)
    };
    match error
        .source()
        .and_then(|source| source.downcast_ref::<regex_syntax::Error>())
    {
        Some(regex_syntax::Error::Parse(error)) => at(error.kind(), error.span()),
        Some(regex_syntax::Error::Translate(error)) => at(error.kind(), error.span()),
        _ => format!("the regex cannot be compiled: {error}"),
    }
}

impl http_client::HostPattern for GuestState {
    fn compile(
        &mut self,
        source: String,
    ) -> wasmtime::Result<Result<Resource<HeldPattern>, String>> {
        let pattern = match HeldPattern::compile(&source) {
            Ok(pattern) => pattern,
            Err(why) => return Ok(Err(why)),
        };
        let charge = pattern.charge;
        Ok(self
            .hold("the pattern", charge, pattern)
            .map_err(NoRoom::into_message))
    }

    fn drop(&mut self, pattern: Resource<HeldPattern>) -> wasmtime::Result<()> {
        let held = self.table.delete(pattern)?;
        self.limits.release(held.charge);
        Ok(())
    }
}

impl GuestState {
    /// Whether `pattern` matches in `response`'s body (Err: the search gave
    /// up, and why).
    pub(super) fn body_matches(
        &mut self,
        response: &Resource<HeldResponse>,
        pattern: &Resource<HeldPattern>,
    ) -> wasmtime::Result<Result<bool, String>> {
        let body = self.table.get(response)?.body();
        Ok(self.table.get(pattern)?.is_match(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, haystack: &[u8]) -> Result<bool, String> {
        HeldPattern::compile(pattern)
            .expect("compiles")
            .is_match(haystack)
    }

    #[test]
    fn a_pattern_searches_bytes_with_ascii_classes() {
        let ok = r#""status":\s*"ok""#;
        assert_eq!(matches(ok, b"\xff\xfe {\"status\": \"ok\"}"), Ok(true));
        assert_eq!(matches(ok, b"{\"status\": \"down\"}"), Ok(false));
        assert_eq!(matches(r"(?i)all\s+SYSTEMS", b"All  systems go"), Ok(true));
        assert_eq!(matches(r"\bv\d+\b", b"version v12 up"), Ok(true));
        assert_eq!(matches("café", "le café".as_bytes()), Ok(true));
        // `\w` is ASCII: a Greek letter is not a word character.
        assert_eq!(matches(r"^\w+$", "αβγ".as_bytes()), Ok(false));
    }

    #[test]
    fn a_bad_pattern_says_where_and_a_huge_one_says_what_to_change() {
        let why = HeldPattern::compile("a(b").err().expect("unclosed group");
        assert_eq!(why, "unclosed group at character 2");
        let why = HeldPattern::compile(r"x\p{Greek}")
            .err()
            .expect("Unicode class");
        assert!(
            why.starts_with("Unicode not allowed here at character 2"),
            "{why}"
        );
        let why = HeldPattern::compile(r"\w{1000}{1000}")
            .err()
            .expect("too big");
        assert!(
            why.contains("more than the 64 KiB the host allows"),
            "{why}"
        );
    }

    #[test]
    fn a_pattern_too_costly_for_the_body_gives_up_and_says_why() {
        // Bounded repetitions of `.` make a state for each position they
        // may be at: on varied text the cache fills faster than it scans.
        let mut x: u64 = 1;
        let body: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnopqrstuvwxyz ab\n"[(x % 30) as usize]
            })
            .collect();
        let why = matches(r"(?s)(.{0,30}[ab]){3}[xy]{6}", &body).expect_err("gives up");
        assert!(why.contains("the search gave up at byte"), "{why}");
        assert!(why.contains("simplify the pattern"), "{why}");
        // An ordinary pattern on the same body answers.
        assert_eq!(matches(r"zzzz\s", &body).map(|_| ()), Ok(()));
    }

    #[test]
    fn what_a_pattern_counts_covers_its_program_and_cache() {
        let pattern = HeldPattern::compile("operational").expect("compiles");
        assert!(pattern.charge >= CACHE_CAPACITY, "{}", pattern.charge);
        assert!(pattern.charge < CACHE_CAPACITY + PROGRAM_LIMIT);
    }
}
