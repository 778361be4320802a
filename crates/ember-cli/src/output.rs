//! Writing vectors: JSON lines (one array per input) or a 2-D `.npy` array.

use std::io::Write;

use clap::ValueEnum;
use ember_core::QuantizedEmbeddings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON array per line, in input order.
    Jsonl,
    /// A NumPy `.npy` file: float32, int8 or uint8, shape (inputs, dimensions).
    Npy,
}

/// Write `vectors` (each `dim` long) in `format`.
pub fn write_vectors(
    out: &mut dyn Write,
    vectors: &QuantizedEmbeddings,
    dim: usize,
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Jsonl => match vectors {
            QuantizedEmbeddings::Float32(v) => write_jsonl(out, v),
            QuantizedEmbeddings::Int8(v) => write_jsonl(out, v),
            QuantizedEmbeddings::Uint8(v) => write_jsonl(out, v),
        },
        OutputFormat::Npy => match vectors {
            QuantizedEmbeddings::Float32(v) => {
                write_npy_header(out, "<f4", v.len(), dim)?;
                for row in v {
                    for x in row {
                        out.write_all(&x.to_le_bytes())?;
                    }
                }
                Ok(())
            }
            QuantizedEmbeddings::Int8(v) => {
                write_npy_header(out, "|i1", v.len(), dim)?;
                for row in v {
                    out.write_all(&row.iter().map(|&x| x as u8).collect::<Vec<u8>>())?;
                }
                Ok(())
            }
            QuantizedEmbeddings::Uint8(v) => {
                write_npy_header(out, "|u1", v.len(), dim)?;
                for row in v {
                    out.write_all(row)?;
                }
                Ok(())
            }
        },
    }
}

fn write_jsonl<T: serde::Serialize>(out: &mut dyn Write, rows: &[Vec<T>]) -> std::io::Result<()> {
    for row in rows {
        serde_json::to_writer(&mut *out, row)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The NPY 1.0 header: magic, version, little-endian header length, a Python dict literal padded
/// with spaces so the data starts on a 64-byte boundary.
fn write_npy_header(out: &mut dyn Write, descr: &str, rows: usize, cols: usize) -> std::io::Result<()> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let mut buf = Vec::new();
        let v = QuantizedEmbeddings::Float32(vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        write_vectors(&mut buf, &v, 2, OutputFormat::Npy).unwrap();
        assert_eq!(&buf[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([buf[8], buf[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&buf[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"));
        assert_eq!(buf.len(), 10 + hlen + 16);
        assert_eq!(&buf[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn jsonl_writes_one_array_per_row() {
        let mut buf = Vec::new();
        write_vectors(&mut buf, &QuantizedEmbeddings::Int8(vec![vec![-1, 2], vec![3, 4]]), 2, OutputFormat::Jsonl)
            .unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "[-1,2]\n[3,4]\n");
    }
}
