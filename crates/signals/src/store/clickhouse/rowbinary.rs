//! ClickHouse's `RowBinary` format, the few types petrel uses: fixed-width little-endian
//! integers, strings and arrays prefixed by a LEB128 length, `Nullable` as a flag byte.
//! Writes are plain byte pushes and reads need no text parsing or escaping, which is why
//! ingest and every read use it (docs/signals-service.md has the measurement).

use super::super::StoreError;

/// Builds a `RowBinary` body, row after row, column after column.
#[derive(Default)]
pub(super) struct RowWriter {
    pub buf: Vec<u8>,
}

impl RowWriter {
    fn len(&mut self, n: usize) {
        let mut n = n as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// `Nullable(Int64)`.
    pub fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.buf.push(0);
                self.i64(v);
            }
            None => self.buf.push(1),
        }
    }

    /// `Array(UInt8)`.
    pub fn u8s(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    /// `Array(Int64)`.
    pub fn i64s(&mut self, v: &[i64]) {
        self.len(v.len());
        for x in v {
            self.i64(*x);
        }
    }

    /// `Array(String)`.
    pub fn strs<S: AsRef<str>>(&mut self, v: &[S]) {
        self.len(v.len());
        for s in v {
            self.str(s.as_ref());
        }
    }
}

/// Reads a `RowBinary` answer; every method fails on a truncated or malformed body.
pub(super) struct RowReader<'a> {
    data: &'a [u8],
}

fn malformed() -> StoreError {
    StoreError::Backend("malformed RowBinary answer from ClickHouse".into())
}

impl<'a> RowReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        RowReader { data }
    }

    /// True when every row has been read.
    pub fn done(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.data.len() < n {
            return Err(malformed());
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| malformed());
            }
        }
        Err(malformed())
    }

    pub fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    pub fn i8(&mut self) -> Result<i8, StoreError> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| malformed())?))
    }

    pub fn i64(&mut self) -> Result<i64, StoreError> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().map_err(|_| malformed())?))
    }

    pub fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| malformed())?))
    }

    /// A `sumMap` result, `Tuple(Array(UInt8), Array(Int64))`, spread into `n` values by key.
    pub fn sparse(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let k = self.len()?;
        let keys = self.take(k)?.to_vec();
        if self.len()? != k {
            return Err(malformed());
        }
        let mut out = vec![0; n];
        for key in keys {
            let v = self.i64()?;
            if let Some(slot) = out.get_mut(usize::from(key)) {
                *slot = v;
            }
        }
        Ok(out)
    }

    pub fn string(&mut self) -> Result<String, StoreError> {
        let n = self.len()?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = RowWriter::default();
        let long = "x".repeat(300);
        w.u8(7);
        w.i64(-5);
        w.u64(u64::MAX);
        w.str(&long);
        w.opt_i64(None);
        w.opt_i64(Some(3));
        w.i8(-2);
        let mut r = RowReader::new(&w.buf);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.string().unwrap(), long);
        assert_eq!(r.u8().unwrap(), 1, "NULL");
        assert_eq!((r.u8().unwrap(), r.i64().unwrap()), (0, 3));
        assert_eq!(r.i8().unwrap(), -2);
        assert!(r.done());
        assert!(RowReader::new(&[0x80]).string().is_err());
    }
}
