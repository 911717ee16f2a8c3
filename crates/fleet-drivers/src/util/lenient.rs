//! Lenient readers for device JSON. Devices send numbers as strings, percentages as `"9.45%"`,
//! unknowns as `"--"` or `""`, and objects where lists belong. Where the meaning is clear these
//! read the value; where it is not they read "unknown" (`None`) instead of failing the answer.
//! List rows and the scalar field readers (`opt_f64`, `string`, `opt_string`, `opt_bool`) read
//! straight from the parser, not through a JSON value built first: that building was most of
//! what a large answer cost to decode. The rest read a bounded value.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Entries a list (or an object) read outside [`with_row_cap`] keeps: a guard, not a budget.
pub const DEFAULT_ROW_CAP: usize = 100_000;

/// Entries an object keeps whatever the list cap: records have dozens of fields.
const MIN_OBJECT_CAP: usize = 256;

thread_local! {
    static ROW_CAP: Cell<usize> = const { Cell::new(DEFAULT_ROW_CAP) };
    static ROWS_CUT: Cell<usize> = const { Cell::new(0) };
}

/// Runs `decode` (synchronous: the cap is this thread's) with every list [`rows`], [`strings`],
/// [`BoundedValue`] and the other list readers here read cut at `cap` entries: the entries past
/// it are skipped without being built. Returns `decode`'s result and how many entries were cut.
pub fn with_row_cap<R>(cap: usize, decode: impl FnOnce() -> R) -> (R, usize) {
    let (old_cap, old_cut) = (ROW_CAP.replace(cap), ROWS_CUT.replace(0));
    let out = decode();
    ROW_CAP.set(old_cap);
    (out, ROWS_CUT.replace(old_cut))
}

/// The current cap on entries per list.
pub fn row_cap() -> usize {
    ROW_CAP.get()
}

/// Records `n` entries cut from a list.
pub fn note_cut(n: usize) {
    ROWS_CUT.set(ROWS_CUT.get().saturating_add(n));
}

/// Skips what is left of a sequence, counting it as cut.
fn skip_rest<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    let mut n = 0usize;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        n += 1;
    }
    note_cut(n);
    Ok(())
}

/// A JSON value whose lists and objects hold at most [`row_cap`] entries each (the rest are
/// skipped while reading), so a body of a million `{}` never becomes a million values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoundedValue(pub Value);

impl<'de> Deserialize<'de> for BoundedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundedVisitor).map(BoundedValue)
    }
}

struct BoundedVisitor;

impl<'de> Visitor<'de> for BoundedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(BoundedVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let cap = row_cap();
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(cap).min(1024));
        while out.len() < cap {
            match seq.next_element::<BoundedValue>()? {
                Some(BoundedValue(v)) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
        skip_rest(&mut seq)?;
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // A small list cap (a device's few SIM cards) must not cut a record's fields.
        let cap = row_cap().max(MIN_OBJECT_CAP);
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len() < cap {
                let BoundedValue(v) = map.next_value()?;
                out.insert(key, v);
            } else {
                map.next_value::<IgnoredAny>()?;
                note_cut(1);
            }
        }
        Ok(Value::Object(out))
    }
}

/// Any JSON value, its lists and objects cut at [`row_cap`] entries.
pub fn bounded<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    BoundedValue::deserialize(d).map(|v| v.0)
}

/// A number from a JSON number or a numeric string (`"320"`, `"1.0e+14"`, `"9.45%"`, `" 48 "`).
/// `"--"`, `""`, `null` and anything else non-numeric are unknown.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => number_in(s),
        _ => None,
    }
}

/// [`number`] of a string.
fn number_in(s: &str) -> Option<f64> {
    let s = s.trim();
    let s = s.strip_suffix('%').unwrap_or(s).trim_end();
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A device percentage as a ratio, rounded to the precision devices report (so `"9.45%"` is
/// 0.0945, not 0.09449999999999999).
pub fn percent_to_ratio(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e8
}

/// A string from a JSON string or number; `null` and structures are unknown.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How one lenient field reader reads each kind of JSON scalar. The field's value is read
/// straight from the source, never built as a [`Value`] first (the decode of a thousand-client
/// answer is mostly these reads); a list or an object where a scalar belongs is skipped unbuilt
/// and reads as unknown, as do `null` and whatever `read_*` declines.
trait ScalarReader {
    type Out;
    const EXPECTING: &'static str;
    fn read_bool(b: bool) -> Option<Self::Out>;
    fn read_number(n: serde_json::Number) -> Option<Self::Out>;
    fn read_str(s: &str) -> Option<Self::Out>;
    fn read_string(s: String) -> Option<Self::Out> {
        Self::read_str(&s)
    }
}

/// Reads a field with `R`: never fails on a well-formed value.
fn scalar<'de, D: Deserializer<'de>, R: ScalarReader>(d: D) -> Result<Option<R::Out>, D::Error> {
    d.deserialize_any(ScalarVisitor::<R>(PhantomData))
}

struct ScalarVisitor<R>(PhantomData<R>);

impl<'de, R: ScalarReader> Visitor<'de> for ScalarVisitor<R> {
    type Value = Option<R::Out>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(R::EXPECTING)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(R::read_bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(R::read_number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(R::read_number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // As `Value` holds it: a non-finite float is no number.
        Ok(serde_json::Number::from_f64(v).and_then(R::read_number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(R::read_str(v))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(R::read_string(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// [`number`], field by field.
struct AsNumber;

impl ScalarReader for AsNumber {
    type Out = f64;
    const EXPECTING: &'static str = "a number";
    fn read_bool(_: bool) -> Option<f64> {
        None
    }
    fn read_number(n: serde_json::Number) -> Option<f64> {
        n.as_f64()
    }
    fn read_str(s: &str) -> Option<f64> {
        number_in(s)
    }
}

/// [`text`], field by field: a string is moved, not copied, when the source owns it.
struct AsText;

impl ScalarReader for AsText {
    type Out = String;
    const EXPECTING: &'static str = "a string";
    fn read_bool(b: bool) -> Option<String> {
        Some(b.to_string())
    }
    fn read_number(n: serde_json::Number) -> Option<String> {
        Some(n.to_string())
    }
    fn read_str(s: &str) -> Option<String> {
        Some(s.to_owned())
    }
    fn read_string(s: String) -> Option<String> {
        Some(s)
    }
}

/// `true`/`false`, 1/0 and their strings ([`opt_bool`]).
struct AsFlag;

impl ScalarReader for AsFlag {
    type Out = bool;
    const EXPECTING: &'static str = "a flag";
    fn read_bool(b: bool) -> Option<bool> {
        Some(b)
    }
    fn read_number(n: serde_json::Number) -> Option<bool> {
        let n = n.as_f64()?;
        if n == 1.0 {
            Some(true)
        } else if n == 0.0 {
            Some(false)
        } else {
            None
        }
    }
    fn read_str(s: &str) -> Option<bool> {
        match s.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
}

/// `deserialize_with` for `Option<f64>` fields: never fails.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    scalar::<D, AsNumber>(d)
}

/// `deserialize_with` for `String` fields: numbers become text, anything else empty.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar::<D, AsText>(d)?.unwrap_or_default())
}

/// `deserialize_with` for `Vec<Option<f64>>`: a list of lenient numbers; a non-list is empty.
pub fn f64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
    Ok(match bounded(d)? {
        Value::Array(items) => items.iter().map(number).collect(),
        _ => Vec::new(),
    })
}

/// `deserialize_with` for nested objects: a value of the wrong shape reads as the default.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(serde_json::from_value(bounded(d)?).unwrap_or_default())
}

/// `deserialize_with` for lists of rows: rows that do not read are dropped, a non-list is empty.
/// Rows are decoded one at a time, so a long list never exists as a generic JSON tree.
pub fn rows<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    struct Rows<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for Rows<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of rows")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let cap = row_cap();
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(cap).min(1024));
            // Rows are counted as read, kept or not: a list of a million rows that do not read
            // is as much work as a million that do.
            for _ in 0..cap {
                match seq.next_element::<Row<T>>()? {
                    Some(Row(row)) => out.extend(row),
                    None => return Ok(out),
                }
            }
            skip_rest(&mut seq)?;
            Ok(out)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }

        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_bool<E>(self, _: bool) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_i64<E>(self, _: i64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_u64<E>(self, _: u64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_f64<E>(self, _: f64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_str<E>(self, _: &str) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
    }

    d.deserialize_any(Rows(PhantomData))
}

/// One entry of a list [`rows`] reads: a `T` when it reads as one, else nothing. An object is
/// read into `T` straight from the source, field by field: not gathered as JSON values or into
/// a JSON map first, whose allocations, sorted inserts and teardown were most of what a
/// thousand-client answer cost to decode. A row `T` refuses for its shape (a known field named
/// twice: which of the two was meant is not clear; a required field missing) is dropped and the
/// rest of it skipped; any other entry is read as a bounded value and converted, as before.
///
/// So `T`'s fields must read whatever well-formed value they meet without failing, as this
/// module's readers and [`BoundedValue`] do: the source cannot resume inside a value that
/// failed, so that fails the answer.
struct Row<T>(Option<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Row<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RowVisitor(PhantomData))
    }
}

struct RowVisitor<T>(PhantomData<T>);

impl<T: DeserializeOwned> RowVisitor<T> {
    fn converted<E>(v: Result<Value, E>) -> Result<Row<T>, E> {
        Ok(Row(serde_json::from_value(v?).ok()))
    }
}

/// The fields of one object row as `T` reads them from the source: at most the object cap of
/// them (the rest skipped unread and counted), with a note of whether the source failed (the
/// answer is broken) or `T` stopped between a key and its value (a field it refused).
struct RowFields<A> {
    source: A,
    /// Fields handed to `T` so far, and how many it may have.
    read: usize,
    cap: usize,
    value_pending: bool,
    /// The source has said the object ends.
    ended: bool,
    source_failed: bool,
}

impl<'de, A: MapAccess<'de>> RowFields<A> {
    fn new(source: A) -> Self {
        RowFields {
            source,
            read: 0,
            cap: row_cap().max(MIN_OBJECT_CAP),
            value_pending: false,
            ended: false,
            source_failed: false,
        }
    }

    fn noted<R>(&mut self, r: Result<R, A::Error>) -> Result<R, A::Error> {
        self.source_failed |= r.is_err();
        r
    }

    /// Skips what `T` left of the object: the value of a refused field and any fields after.
    fn skip_rest(&mut self) -> Result<(), A::Error> {
        if self.value_pending {
            self.next_value::<IgnoredAny>()?;
        }
        while self.next_key::<IgnoredAny>()?.is_some() {
            self.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for RowFields<A> {
    type Error = A::Error;

    // Inlined into `T`'s field loop: as a call of its own it cost about 25 of the 275
    // instructions reading a key takes (a thousand-client answer has 33,000 keys), spent saving
    // registers and passing the key back through memory.
    #[inline(always)]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.ended {
            return Ok(None);
        }
        if self.read >= self.cap {
            // A small list cap (a device's few SIM cards) must not cut a record's fields; past
            // the object cap they are skipped unread, and counted.
            loop {
                let entry = self.source.next_entry::<IgnoredAny, IgnoredAny>();
                match self.noted(entry)? {
                    Some(_) => note_cut(1),
                    None => break,
                }
            }
            self.ended = true;
            return Ok(None);
        }
        let key = self.source.next_key_seed(KeyBytes(seed));
        match self.noted(key)? {
            Some(key) => {
                self.read += 1;
                self.value_pending = true;
                Ok(Some(key))
            }
            None => {
                self.ended = true;
                Ok(None)
            }
        }
    }

    #[inline(always)]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.value_pending = false;
        let value = self.source.next_value_seed(seed);
        self.noted(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.source.size_hint()
    }
}

/// A row's key as `T` reads it, with field names matched as bytes: a name is one of `T`'s
/// (ASCII) names or ignored, so checking that it is UTF-8 first (about 40% of what reading a key
/// cost) decides nothing. Keys read as text are read as before.
struct KeyBytes<K>(K);

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeyBytes<K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        self.0.deserialize(FieldNameAsBytes(d))
    }
}

struct FieldNameAsBytes<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for FieldNameAsBytes<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_bytes(v)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_string(v)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(v)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_ignored_any(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for RowVisitor<T> {
    type Value = Row<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Row<T>, A::Error> {
        let mut fields = RowFields::new(map);
        let row = T::deserialize(serde::de::value::MapAccessDeserializer::new(&mut fields));
        match row {
            Err(e) if fields.source_failed => Err(e),
            row => {
                fields.skip_rest()?;
                Ok(Row(row.ok()))
            }
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Row<T>, A::Error> {
        Self::converted(BoundedVisitor.visit_seq(seq))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_i64(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_u64(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_f64(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_str(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_string(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_unit())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Row<T>, E> {
        Self::converted(BoundedVisitor.visit_none())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Row<T>, D::Error> {
        d.deserialize_any(self)
    }
}

/// Unix seconds from the date-time formats servers use: `2006-01-02 15:04:05.0000000-07:00`,
/// RFC 3339 with any offset (`T` or space, any fraction, `Z`), or a bare Unix number. Zero times
/// (`null`, year 1 or earlier) and unreadable text are unknown.
pub fn timestamp(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => unix_number(n),
        Value::String(s) => timestamp_text(s),
        _ => None,
    }
}

/// A bare Unix number as a time: zero and before is no time.
fn unix_number(n: &serde_json::Number) -> Option<f64> {
    n.as_f64().filter(|t| *t > 0.0)
}

/// [`timestamp`] of a string.
fn timestamp_text(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if year <= 1
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = 0.0;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        fraction = decimal_fraction(&frac[..end])?;
        rest = &frac[end..];
    }
    let offset = match rest.trim_start() {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = zone[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (h, m): (i64, i64) = (hm[..2].parse().ok()?, hm[2..].parse().ok()?);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

/// `0.<digits>` as a number, parsed as that text (so the same `f64` as ever): built on the stack,
/// not allocated, for the usual fractions of up to nanoseconds and beyond.
fn decimal_fraction(digits: &str) -> Option<f64> {
    let mut text = [0u8; 40];
    let Some(room) = text.get_mut(2..2 + digits.len()) else {
        return format!("0.{digits}").parse().ok();
    };
    room.copy_from_slice(digits.as_bytes());
    text[..2].copy_from_slice(b"0.");
    std::str::from_utf8(&text[..2 + digits.len()])
        .ok()?
        .parse()
        .ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `deserialize_with` for `Option<f64>` timestamps (see [`timestamp`]): never fails.
pub fn opt_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    scalar::<D, AsTimestamp>(d)
}

/// [`timestamp`], field by field: the text is read where it lies, not copied into a value.
struct AsTimestamp;

impl ScalarReader for AsTimestamp {
    type Out = f64;
    const EXPECTING: &'static str = "a time";
    fn read_bool(_: bool) -> Option<f64> {
        None
    }
    fn read_number(n: serde_json::Number) -> Option<f64> {
        unix_number(&n)
    }
    fn read_str(s: &str) -> Option<f64> {
        timestamp_text(s)
    }
}

/// `deserialize_with` for lists of strings: non-string items are dropped, a non-list is empty.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match bounded(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// A device's local date and time (`2025-10-18 00:00:00`, or a bare `2025-10-18`) as Unix
/// seconds, given the device's offset from UTC. Anything else, including the all-zero dates some
/// devices send for "never" and years past 9999, is unknown.
pub fn local_datetime(s: &str, utc_offset_secs: i64) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm) = (t.next()??, t.next()??);
    let ss = t.next().unwrap_or(Some(0))?;
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&day)
        && (0..24).contains(&hh)
        && (0..60).contains(&mm)
        && (0..61).contains(&ss)
        && (1970..=9999).contains(&y);
    if !valid {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss - utc_offset_secs) as f64)
}

/// Decodes `%XX` escapes (devices URL-encode some user text); text that is not valid
/// percent-encoding, or does not decode to UTF-8, is returned as it came.
pub fn url_decoded(s: &str) -> Cow<'_, str> {
    // Most text has no escape: it is lent back, not copied.
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => out.push(b),
                None => return Cow::Borrowed(s),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(s), Cow::Owned)
}

/// `deserialize_with` for objects keyed by id (`{"<uuid>": {...}, ...}`): the entries in the
/// server's order, each value decoded straight into its row (never built as a generic tree, so
/// a 2,000-node answer costs one pass); values that are not objects are dropped, a non-object
/// is empty, and entries past [`row_cap`] are skipped unbuilt and counted.
pub fn entries<'de, D, T>(d: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    struct Entries<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for Entries<T> {
        type Value = Vec<(String, T)>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of rows by id")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let cap = row_cap();
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(cap).min(1024));
            let mut read = 0usize;
            while let Some(key) = map.next_key::<String>()? {
                if read >= cap {
                    map.next_value::<IgnoredAny>()?;
                    note_cut(1);
                    continue;
                }
                read += 1;
                if let ObjectOrNothing(Some(row)) = map.next_value()? {
                    out.push((key, row));
                }
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }

    d.deserialize_any(Entries(PhantomData))
}

/// A row read from an object, or nothing when the value is not an object.
struct ObjectOrNothing<T>(Option<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for ObjectOrNothing<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Row<T>(PhantomData<T>);

        impl<'de, T: DeserializeOwned> Visitor<'de> for Row<T> {
            type Value = ObjectOrNothing<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                Ok(ObjectOrNothing(Some(T::deserialize(de)?)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ObjectOrNothing(None))
            }

            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }

            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }

            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }

            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }

            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ObjectOrNothing(None))
            }
        }

        d.deserialize_any(Row(PhantomData))
    }
}

/// `deserialize_with` for `Option<bool>` flags: `true`/`false`, 1/0 and their strings; anything
/// else is unknown.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    scalar::<D, AsFlag>(d)
}

/// [`string`] without the copy: a string the source lends (unescaped, in the answer's own
/// bytes) is borrowed, for a row type that keeps only some of its texts, or keeps them packed.
pub fn text_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    struct TextRef;

    impl<'de> Visitor<'de> for TextRef {
        type Value = Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(AsText::EXPECTING)
        }
        fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        // Everything else as `string` reads it.
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_str(v))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_string(v))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_bool(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_i64(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_u64(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_f64(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_seq(seq))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            owned(ScalarVisitor::<AsText>(PhantomData).visit_map(map))
        }
    }

    fn owned<'de, E>(text: Result<Option<String>, E>) -> Result<Cow<'de, str>, E> {
        text.map(|t| Cow::Owned(t.unwrap_or_default()))
    }

    d.deserialize_any(TextRef)
}

/// `deserialize_with` for `Option<String>` fields where a missing value differs from `""`:
/// strings and numbers are text, anything else is unknown.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar::<D, AsText>(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_past_the_row_cap_are_skipped_unbuilt_and_counted() {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Page {
            #[serde(deserialize_with = "rows")]
            data: Vec<Value>,
            #[serde(deserialize_with = "strings")]
            ids: Vec<String>,
        }
        let body = format!(
            r#"{{"data":[{}{{}}],"ids":["a","b","c"],"x":[1,2,3,4]}}"#,
            "{},".repeat(9)
        );
        let ((page, value), cut) = with_row_cap(2, || {
            let page: Page = serde_json::from_str(&body).unwrap();
            let value: BoundedValue = serde_json::from_str(&body).unwrap();
            (page, value)
        });
        assert_eq!((page.data.len(), page.ids.len()), (2, 2));
        assert_eq!(value.0["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(value.0["x"].as_array().map(Vec::len), Some(2));
        // Page: 8 rows and 1 id; value: 8 rows, 1 id and 2 numbers.
        assert_eq!(cut, 8 + 1 + 8 + 1 + 2);
        let wide = format!(
            "{{{}\"z\":0}}",
            (0..300).map(|i| format!("\"k{i}\":0,")).collect::<String>()
        );
        let (value, cut) = with_row_cap(2, || serde_json::from_str::<BoundedValue>(&wide).unwrap());
        assert_eq!(
            (value.0.as_object().map(|m| m.len()), cut),
            (Some(MIN_OBJECT_CAP), 301 - MIN_OBJECT_CAP)
        );
        assert_eq!(row_cap(), DEFAULT_ROW_CAP, "the cap is restored");
    }
    use serde_json::json;

    #[test]
    fn numbers_in_every_shape_devices_send() {
        assert_eq!(number(&json!(12)), Some(12.0));
        assert_eq!(number(&json!("320")), Some(320.0));
        assert_eq!(number(&json!("9.45%")), Some(9.45));
        assert_eq!(number(&json!(1.0118846706974e+14)), Some(101188467069740.0));
        assert_eq!(
            number(&json!("1.0118846706974e+14")),
            Some(101188467069740.0)
        );
        assert_eq!(number(&json!(" -48 ")), Some(-48.0));
        for unknown in [
            json!("--"),
            json!(""),
            json!(null),
            json!([]),
            json!("NaN"),
            json!("abc"),
        ] {
            assert_eq!(number(&unknown), None, "{unknown}");
        }
    }

    #[test]
    fn timestamps_in_the_formats_servers_have_used() {
        let t = |s: &str| timestamp(&json!(s));
        // 2025-07-15T07:37:33Z
        assert_eq!(t("2025-07-15T07:37:33Z"), Some(1752565053.0));
        assert_eq!(
            t("2025-07-15T07:37:33.70221251Z"),
            Some(1_752_565_053.702_212_5)
        );
        assert_eq!(t("2025-07-15T15:37:33+08:00"), Some(1752565053.0));
        assert_eq!(t("2025-07-15 00:37:33.0000000-07:00"), Some(1752565053.0));
        assert_eq!(t("2025-07-15 07:37:33"), Some(1752565053.0));
        assert_eq!(t("2000-02-29T00:00:00Z"), Some(951782400.0));
        assert_eq!(timestamp(&json!(1752565053)), Some(1752565053.0));
        for zero in [
            json!(null),
            json!("0001-01-01 00:00:00+00:00"),
            json!("0001-01-01T00:00:00Z"),
            json!(""),
            json!("yesterday"),
            json!("2025-13-01T00:00:00Z"),
            json!("2025-07-15T07:37:33+8"),
            json!(0),
        ] {
            assert_eq!(timestamp(&zero), None, "{zero}");
        }
    }

    #[test]
    fn a_time_field_reads_as_its_value_does() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(deserialize_with = "opt_timestamp")]
            t: Option<f64>,
        }
        let long_fraction = format!("2025-07-15T07:37:33.{}Z", "7".repeat(60));
        for v in [
            json!("2025-07-15T07:37:33.70221251Z"),
            json!("2025-07-15 00:37:33.0000000-07:00"),
            json!("2025-07-15T07:37:33.Z"),
            json!(long_fraction),
            json!("0001-01-01 00:00:00+00:00"),
            json!(1752565053),
            json!(1752565053.5),
            json!(-5),
            json!(true),
            json!(null),
            json!([1]),
            json!({"t": 1}),
        ] {
            let row: Row = serde_json::from_str(&json!({ "t": v }).to_string()).unwrap();
            assert_eq!(row.t, timestamp(&v), "{v}");
        }
        for digits in [
            "",
            "5",
            "70221251",
            "566485833",
            &"9".repeat(38),
            &"3".repeat(39),
        ] {
            let as_text: Option<f64> = format!("0.{digits}").parse().ok();
            assert_eq!(decimal_fraction(digits), as_text, "{digits}");
        }
    }

    #[test]
    fn rows_keep_what_reads_and_tolerate_any_shape() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Row {
            #[serde(deserialize_with = "opt_f64")]
            n: Option<f64>,
        }
        let read = |v: Value| rows::<_, Row>(v).unwrap();
        let list = json!([{"n": "1"}, "junk", {"n": 2}, null, {"n": "--"}]);
        assert_eq!(
            read(list),
            [Row { n: Some(1.0) }, Row { n: Some(2.0) }, Row { n: None }]
        );
        for other in [
            json!(null),
            json!({"a": [1]}),
            json!("x"),
            json!(3),
            json!(true),
        ] {
            assert!(read(other).is_empty());
        }
    }

    #[test]
    fn rows_are_read_field_by_field_and_a_field_named_twice_drops_its_row() {
        #[derive(Deserialize, Debug, PartialEq, Default)]
        #[serde(default)]
        struct Row {
            #[serde(deserialize_with = "opt_f64")]
            n: Option<f64>,
            #[serde(rename = "totalUp", deserialize_with = "string")]
            up: String,
        }
        let read = |body: &str| rows::<_, Row>(&mut serde_json::Deserializer::from_str(body));
        let body = r#"[{"n":"1","totalUp":7,"x":{"deep":[1,2]}},{"n":1,"n":2},{"totalUp":"a"}]"#;
        let one = Row {
            n: Some(1.0),
            up: "7".into(),
        };
        let two = Row {
            n: None,
            up: "a".into(),
        };
        assert_eq!(read(body).unwrap(), [one, two]);
        // Entries that are not objects convert as any value does.
        let body = r#"[1,"a",{"k":null},[true],null]"#;
        let any = rows::<_, Value>(&mut serde_json::Deserializer::from_str(body)).unwrap();
        assert_eq!(
            any,
            [
                json!(1),
                json!("a"),
                json!({"k": null}),
                json!([true]),
                json!(null)
            ]
        );
    }

    #[test]
    fn field_readers_read_the_source_as_the_value_readers_read_its_values() {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(deserialize_with = "opt_f64")]
            number: Option<f64>,
            #[serde(deserialize_with = "string")]
            string: String,
            #[serde(deserialize_with = "opt_string")]
            text: Option<String>,
            #[serde(deserialize_with = "opt_bool")]
            flag: Option<bool>,
        }
        let shapes = [
            "12",
            "-3",
            "1.5",
            "18446744073709551615",
            "1.0118846706974e+14",
            "1e20",
            r#""320""#,
            r#""9.45%""#,
            r#""1.0118846706974e+14""#,
            r#"" -48 ""#,
            r#""--""#,
            r#""""#,
            r#""NaN""#,
            r#""\u7ea2\u7c73 \"x\"""#,
            r#""true""#,
            r#"" 0 ""#,
            "true",
            "false",
            "0",
            "1",
            "null",
            "[]",
            r#"[1,"2",{"a":[3]}]"#,
            r#"{"a":{"b":[1,2]}}"#,
        ];
        for shape in shapes {
            let value: Value = serde_json::from_str(shape).unwrap();
            let flag = match &value {
                Value::Bool(b) => Some(*b),
                Value::String(s) => match s.trim() {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                },
                Value::Number(_) => number(&value)
                    .filter(|n| *n == 0.0 || *n == 1.0)
                    .map(|n| n == 1.0),
                _ => None,
            };
            let body =
                format!(r#"{{"number":{shape},"string":{shape},"text":{shape},"flag":{shape}}}"#);
            // From the JSON text (a driver's answer) and from a value (a nested payload).
            for fields in [
                serde_json::from_str::<Fields>(&body).unwrap(),
                serde_json::from_value::<Fields>(serde_json::from_str(&body).unwrap()).unwrap(),
            ] {
                assert_eq!(fields.number, number(&value), "{shape}");
                assert_eq!(fields.string, text(&value).unwrap_or_default(), "{shape}");
                assert_eq!(fields.text, text(&value), "{shape}");
                assert_eq!(fields.flag, flag, "{shape}");
            }
            // `text_ref` reads as `string` does, from the text and from a value.
            let from_text = text_ref(&mut serde_json::Deserializer::from_str(shape)).unwrap();
            assert_eq!(from_text, text(&value).unwrap_or_default(), "{shape}");
            let from_value = text_ref(value.clone()).unwrap();
            assert_eq!(from_value, text(&value).unwrap_or_default(), "{shape}");
        }
        // A string the source holds unescaped is lent, not copied; an escaped one is decoded.
        let lent = text_ref(&mut serde_json::Deserializer::from_str(r#""ab:cd""#)).unwrap();
        assert!(matches!(lent, Cow::Borrowed("ab:cd")));
        let escaped = text_ref(&mut serde_json::Deserializer::from_str(r#""a\"b""#)).unwrap();
        assert!(matches!(escaped, Cow::Owned(ref s) if s == "a\"b"));
    }

    #[test]
    fn rows_read_from_the_source_drop_only_the_rows_that_do_not_read() {
        #[derive(Deserialize, Debug, PartialEq, Default)]
        #[serde(default)]
        struct Row {
            #[serde(deserialize_with = "opt_f64")]
            n: Option<f64>,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct Required {
            #[serde(deserialize_with = "string")]
            id: String,
        }
        let read = |body: &str| rows::<_, Row>(&mut serde_json::Deserializer::from_str(body));
        // Mistyped fields are unknown and nested structures under unknown keys skipped; the
        // row after a field named twice reads (the rest of the dropped row was skipped).
        let body = r#"[{"n":[1,{"x":2}],"deep":{"a":[{"b":1}]}},{"n":1,"n":2,"z":[3]},{"n":"4"}]"#;
        assert_eq!(read(body).unwrap(), [Row { n: None }, Row { n: Some(4.0) }]);
        // A row without a required field is dropped, wherever the field is missing.
        let body = r#"[{"x":1},{"id":7},{"x":{"id":1}}]"#;
        let got = rows::<_, Required>(&mut serde_json::Deserializer::from_str(body)).unwrap();
        assert_eq!(got, [Required { id: "7".into() }]);
        // A broken answer is not a dropped row: it fails, as any unreadable answer does.
        assert!(read(r#"[{"n":1,"x":[1,}]"#).is_err());
        assert!(read(r#"[{"n":1,"x"}]"#).is_err());
        // Field names are matched as bytes: escapes still decode, and a name that is not UTF-8
        // is no field of the row, not a broken answer.
        let body = b"[{\"\\u006e\":7},{\"n\xff\":1,\"n\":8}]";
        let got = rows::<_, Row>(&mut serde_json::Deserializer::from_slice(body)).unwrap();
        assert_eq!(got, [Row { n: Some(7.0) }, Row { n: Some(8.0) }]);
        // Fields past the object cap are skipped unread and counted; the row keeps the rest.
        let wide = format!(
            "[{{{}\"n\":5}},{{\"n\":6}}]",
            (0..MIN_OBJECT_CAP + 9)
                .map(|i| format!("\"k{i}\":[{i}],"))
                .collect::<String>()
        );
        let (got, cut) = with_row_cap(2, || read(&wide).unwrap());
        assert_eq!(
            (got, cut),
            (vec![Row { n: None }, Row { n: Some(6.0) }], 10)
        );
    }

    #[test]
    fn local_dates_in_any_offset() {
        let cst = 8 * 3600;
        assert_eq!(
            local_datetime("2025-10-18 00:00:00", cst),
            Some(1_760_716_800.0)
        );
        assert_eq!(local_datetime("2025-10-18", cst), Some(1_760_716_800.0));
        assert_eq!(
            local_datetime("2025-09-18 18:24:10", 0),
            Some(1_758_219_850.0)
        );
        assert_eq!(local_datetime("2024-02-29 12:00", 0), Some(1_709_208_000.0));
        // A 13-digit year once overflowed.
        for unknown in [
            "",
            "--",
            "0000-00-00 00:00:00",
            "2025-13-01",
            "yesterday",
            "9999999999999-01-01",
        ] {
            assert_eq!(local_datetime(unknown, cst), None, "{unknown}");
        }
    }

    #[test]
    fn url_decoding_is_best_effort() {
        assert_eq!(url_decoded("红米Note%2011T%20Pro"), "红米Note 11T Pro");
        assert_eq!(url_decoded("%E5%AE%A2%E5%8E%85"), "客厅");
        assert_eq!(url_decoded("100%"), "100%");
        assert_eq!(url_decoded("50%off"), "50%off");
        assert_eq!(url_decoded("%FF%FE"), "%FF%FE");
        assert_eq!(url_decoded("plain"), "plain");
        assert!(
            matches!(url_decoded("plain"), Cow::Borrowed(_)),
            "text without escapes is lent back"
        );
    }

    #[test]
    fn entries_by_id_keep_rows_drop_non_objects_and_stop_at_the_cap() {
        #[derive(Deserialize, Default, Debug, PartialEq)]
        #[serde(default)]
        struct Row {
            #[serde(deserialize_with = "opt_f64")]
            v: Option<f64>,
            #[serde(deserialize_with = "opt_bool")]
            on: Option<bool>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Answer {
            #[serde(deserialize_with = "entries")]
            data: Vec<(String, Row)>,
        }
        let body =
            r#"{"data":{"a":{"v":"1.5","on":1},"b":null,"c":[1],"d":{"v":2,"on":"maybe"},"e":{}}}"#;
        let (answer, cut) = with_row_cap(4, || serde_json::from_str::<Answer>(body).unwrap());
        let got: Vec<_> = answer
            .data
            .iter()
            .map(|(k, r)| (k.as_str(), r.v, r.on))
            .collect();
        assert_eq!(got, [("a", Some(1.5), Some(true)), ("d", Some(2.0), None)]);
        assert_eq!(cut, 1, "the fifth entry is past the cap");
        let answer: Answer = serde_json::from_str(r#"{"data":[{"v":1}]}"#).unwrap();
        assert!(answer.data.is_empty(), "a list is not an object of rows");
    }
}
