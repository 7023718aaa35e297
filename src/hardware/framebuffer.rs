//! The Linux framebuffer (`/dev/fb0`, the HDMI console): the frame drawn as large as whole
//! pixels allow, centred, lit pixels white and the rest black. The geometry (size, depth,
//! line length) is read from the device's sysfs directory rather than by ioctl, so no
//! `unsafe` is needed here; both paths are parameters so tests use plain files. It never
//! reads the framebuffer back or touches anything outside the area it draws.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::hardware::display::Display;
use crate::hardware::error::HardwareError;
use crate::hardware::frame::{Frame, HEIGHT, WIDTH};

/// The framebuffer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub bits_per_pixel: u32,
    /// Bytes from the start of one line to the next.
    pub stride: u32,
}

impl Geometry {
    /// Reads `virtual_size`, `bits_per_pixel` and `stride` from a sysfs directory such as
    /// `/sys/class/graphics/fb0`.
    pub fn read(sysfs: &Path) -> Result<Geometry, HardwareError> {
        let fail = |reason: String| HardwareError::Framebuffer {
            path: sysfs.display().to_string(),
            reason,
        };
        let read = |name: &str| {
            std::fs::read_to_string(sysfs.join(name))
                .map(|t| t.trim().to_string())
                .map_err(|e| fail(format!("cannot read {name}: {e}")))
        };
        let number = |name: &str, text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| fail(format!("{name} is {text:?}, not a number")))
        };
        let size = read("virtual_size")?;
        let (w, h) = size
            .split_once(',')
            .ok_or_else(|| fail(format!("virtual_size is {size:?}, not WIDTH,HEIGHT")))?;
        let geometry = Geometry {
            width: number("virtual_size", w)?,
            height: number("virtual_size", h)?,
            bits_per_pixel: number("bits_per_pixel", &read("bits_per_pixel")?)?,
            stride: number("stride", &read("stride")?)?,
        };
        if !matches!(geometry.bits_per_pixel, 16 | 24 | 32) {
            return Err(fail(format!(
                "{} bits per pixel is not supported (16, 24 or 32)",
                geometry.bits_per_pixel
            )));
        }
        if geometry.width < WIDTH || geometry.height < HEIGHT {
            return Err(fail(format!(
                "{}x{} is smaller than the {WIDTH}x{HEIGHT} frame",
                geometry.width, geometry.height
            )));
        }
        if geometry.stride < geometry.width * geometry.bits_per_pixel / 8 {
            return Err(fail(format!(
                "stride {} is shorter than a line",
                geometry.stride
            )));
        }
        Ok(geometry)
    }

    /// Screen pixels per frame pixel, each way.
    pub fn scale(&self) -> u32 {
        (self.width / WIDTH).min(self.height / HEIGHT).max(1)
    }

    /// Where the frame's top left corner lands.
    pub fn origin(&self) -> (u32, u32) {
        let scale = self.scale();
        (
            (self.width - WIDTH * scale) / 2,
            (self.height - HEIGHT * scale) / 2,
        )
    }
}

/// A framebuffer device opened for writing.
#[derive(Debug)]
pub struct Framebuffer {
    device: PathBuf,
    file: File,
    geometry: Geometry,
}

impl Framebuffer {
    /// Opens `device`, its geometry read from `sysfs`.
    pub fn open(device: &Path, sysfs: &Path) -> Result<Framebuffer, HardwareError> {
        let geometry = Geometry::read(sysfs)?;
        let file = OpenOptions::new().write(true).open(device).map_err(|e| {
            HardwareError::Framebuffer {
                path: device.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Framebuffer {
            device: device.to_path_buf(),
            file,
            geometry,
        })
    }

    /// The sysfs directory of a device path: `/dev/fb0` → `/sys/class/graphics/fb0`.
    pub fn sysfs_of(device: &Path) -> PathBuf {
        let name = device.file_name().unwrap_or_default();
        Path::new("/sys/class/graphics").join(name)
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }
}

impl Display for Framebuffer {
    fn describe(&self) -> String {
        let g = self.geometry;
        format!(
            "framebuffer {} ({}x{}, {} bpp, scale {})",
            self.device.display(),
            g.width,
            g.height,
            g.bits_per_pixel,
            g.scale()
        )
    }

    fn show(&mut self, frame: &Frame) -> Result<(), HardwareError> {
        let g = self.geometry;
        let scale = g.scale();
        let (left, top) = g.origin();
        let bytes = (g.bits_per_pixel / 8) as usize;
        let mut line = vec![0u8; (WIDTH * scale) as usize * bytes];
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let value = if frame.pixel(x, y) { 0xFF } else { 0x00 };
                let start = (x * scale) as usize * bytes;
                if let Some(cells) = line.get_mut(start..start + scale as usize * bytes) {
                    cells.fill(value);
                }
            }
            for k in 0..scale {
                let offset = u64::from(top + y * scale + k) * u64::from(g.stride)
                    + u64::from(left) * bytes as u64;
                self.file
                    .write_all_at(&line, offset)
                    .map_err(|e| HardwareError::Framebuffer {
                        path: self.device.display().to_string(),
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }
}
