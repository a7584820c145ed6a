//! Control requests on endpoint 0: standard (descriptors, configuration, interface) and UVC
//! class requests (Processing Unit → the DAQ emulator, Camera Terminal read-backs,
//! VideoStreaming probe/commit).

use super::*;

impl Lookalike {
    /// Answers one control transfer on endpoint 0: `Ok` with the IN data (the caller
    /// truncates it to `wLength`) or an empty vector for OUT requests, or [`Stall`].
    pub fn control(&mut self, s: Setup, data: &[u8], now_ns: u64) -> Result<Vec<u8>, Stall> {
        const GET_STATUS: u8 = 0;
        const CLEAR_FEATURE: u8 = 1;
        const SET_FEATURE: u8 = 3;
        const SET_ADDRESS: u8 = 5;
        const GET_DESCRIPTOR: u8 = 6;
        const GET_CONFIGURATION: u8 = 8;
        const SET_CONFIGURATION: u8 = 9;
        const GET_INTERFACE: u8 = 10;
        const SET_INTERFACE: u8 = 11;
        const SET_SEL: u8 = 0x30;
        const SET_ISOCH_DELAY: u8 = 0x31;
        match (s.request_type, s.request) {
            (0x80, GET_DESCRIPTOR) => self.get_descriptor(s.value),
            (0x00, SET_ADDRESS) | (0x00, SET_SEL) | (0x00, SET_ISOCH_DELAY) => Ok(Vec::new()),
            (0x00, SET_CONFIGURATION) => match s.value {
                0 => {
                    self.stop_stream();
                    self.configuration = 0;
                    Ok(Vec::new())
                }
                1 => {
                    self.configuration = 1;
                    Ok(Vec::new())
                }
                _ => Err(Stall),
            },
            (0x80, GET_CONFIGURATION) => Ok(vec![self.configuration]),
            (0x80..=0x82, GET_STATUS) => Ok(vec![0, 0]),
            (0x01, SET_INTERFACE) => {
                let (intf, alt) = (s.index as u8, s.value);
                match (intf, alt) {
                    (VC_INTERFACE, 0) => Ok(Vec::new()),
                    (VS_INTERFACE, 0) => {
                        // The only alternate setting; selecting it (again) means "idle".
                        self.stop_stream();
                        Ok(Vec::new())
                    }
                    _ => Err(Stall),
                }
            }
            (0x81, GET_INTERFACE) => Ok(vec![0]),
            (0x02, CLEAR_FEATURE) => {
                // ENDPOINT_HALT on the video endpoint is how uvcvideo stops a bulk stream.
                if s.value == 0 && s.index as u8 == VIDEO_ENDPOINT {
                    self.stop_stream();
                }
                Ok(Vec::new())
            }
            (0x00..=0x02, CLEAR_FEATURE | SET_FEATURE) => Ok(Vec::new()),
            (0x21 | 0xA1, _) => {
                let r = self.class_request(s, data, now_ns);
                if r.is_ok() {
                    self.request_error = 0;
                }
                r
            }
            _ => Err(Stall),
        }
    }

    fn get_descriptor(&self, value: u16) -> Result<Vec<u8>, Stall> {
        let (kind, index) = ((value >> 8) as u8, value as u8);
        match kind {
            dt::DEVICE => Ok(descriptors::device_descriptor(self.config.speed)),
            dt::CONFIGURATION if index == 0 => {
                Ok(descriptors::configuration_descriptor(self.config.speed))
            }
            dt::STRING => descriptors::string_descriptor(index).ok_or(Stall),
            dt::BOS if self.config.speed == Speed::Super => Ok(descriptors::bos_descriptor()),
            _ => Err(Stall),
        }
    }

    fn class_request(&mut self, s: Setup, data: &[u8], now_ns: u64) -> Result<Vec<u8>, Stall> {
        let interface = s.index as u8;
        let entity = (s.index >> 8) as u8;
        let selector = (s.value >> 8) as u8;
        match (interface, entity) {
            (VC_INTERFACE, 0) if selector == VC_REQUEST_ERROR_CODE => match s.request {
                req::GET_CUR => Ok(vec![self.request_error]),
                req::GET_INFO => Ok(vec![0x01]),
                _ => Err(Stall),
            },
            (VC_INTERFACE, PROCESSING_UNIT_ID) => {
                self.pu_request(s.request, selector, data, now_ns)
            }
            (VC_INTERFACE, CAMERA_TERMINAL_ID) => self.ct_request(s.request, selector, now_ns),
            (VS_INTERFACE, 0) => self.vs_request(s.request, selector, data, now_ns),
            _ => {
                self.request_error = ERR_INVALID_CONTROL;
                Err(Stall)
            }
        }
    }

    fn pu_request(
        &mut self,
        request: u8,
        selector: u8,
        data: &[u8],
        now_ns: u64,
    ) -> Result<Vec<u8>, Stall> {
        let Some(sel) = PuSelector::from_code(selector) else {
            self.request_error = ERR_INVALID_CONTROL;
            return Err(Stall);
        };
        let signed = matches!(sel, PuSelector::Brightness | PuSelector::Hue);
        let word = |v: u16| Ok(v.to_le_bytes().to_vec());
        self.daq.set_time_ns(now_ns);
        match request {
            req::SET_CUR => {
                let [lo, hi] = [data.first().copied(), data.get(1).copied()];
                let (Some(lo), Some(hi)) = (lo, hi) else {
                    self.request_error = ERR_INVALID_REQUEST;
                    return Err(Stall);
                };
                self.daq
                    .set_pu(sel, u16::from_le_bytes([lo, hi]))
                    .map_err(|_| Stall)?;
                self.collect_log();
                Ok(Vec::new())
            }
            req::GET_CUR => word(self.daq.get_pu(sel).map_err(|_| Stall)?),
            req::GET_MIN => word(if signed { 0x8000 } else { 0 }),
            req::GET_MAX => word(if signed { 0x7FFF } else { 0xFFFF }),
            req::GET_RES => word(1),
            req::GET_DEF => word(0),
            req::GET_LEN => word(2),
            req::GET_INFO => Ok(vec![PU_INFO]),
            _ => {
                self.request_error = ERR_INVALID_REQUEST;
                Err(Stall)
            }
        }
    }

    fn ct_request(&mut self, request: u8, selector: u8, now_ns: u64) -> Result<Vec<u8>, Stall> {
        let sel = match selector {
            0x04 => CtSelector::ExposureTimeAbsolute,
            0x0D => CtSelector::PanTiltAbsolute,
            _ => {
                self.request_error = ERR_INVALID_CONTROL;
                return Err(Stall);
            }
        };
        let len = sel.payload_len();
        let fill = |lo: u32| -> Vec<u8> {
            let mut v = Vec::with_capacity(len);
            while v.len() < len {
                v.extend_from_slice(&lo.to_le_bytes());
            }
            v
        };
        let (min, max) = match sel {
            CtSelector::ExposureTimeAbsolute => (0, 0xFFFF),
            CtSelector::PanTiltAbsolute => (i32::MIN as u32, i32::MAX as u32),
        };
        self.daq.set_time_ns(now_ns);
        match request {
            req::GET_CUR => {
                let mut out = vec![0; len];
                self.daq.get_ct(sel, &mut out).map_err(|_| Stall)?;
                Ok(out)
            }
            req::GET_MIN => Ok(fill(min)),
            req::GET_MAX => Ok(fill(max)),
            req::GET_RES => Ok(fill(1)),
            req::GET_DEF => Ok(fill(0)),
            req::GET_LEN => Ok((len as u16).to_le_bytes().to_vec()),
            req::GET_INFO => Ok(vec![CT_INFO]),
            _ => {
                self.request_error = ERR_INVALID_REQUEST;
                Err(Stall)
            }
        }
    }

    fn vs_request(
        &mut self,
        request: u8,
        selector: u8,
        data: &[u8],
        now_ns: u64,
    ) -> Result<Vec<u8>, Stall> {
        if selector != VS_PROBE && selector != VS_COMMIT {
            self.request_error = ERR_INVALID_CONTROL;
            return Err(Stall);
        }
        let default = Probe::default_for(self.config.speed);
        match request {
            req::SET_CUR if selector == VS_PROBE => {
                self.probe = self.probe.negotiate(data);
                Ok(Vec::new())
            }
            req::SET_CUR => {
                self.commit = self.probe.negotiate(data);
                self.probe = self.commit;
                self.start_stream(now_ns);
                Ok(Vec::new())
            }
            req::GET_CUR if selector == VS_PROBE => Ok(self.probe.to_bytes()),
            req::GET_CUR => Ok(self.commit.to_bytes()),
            req::GET_MIN => Ok(default.to_bytes()),
            req::GET_MAX => Ok(Probe {
                interval: FRAME_INTERVALS[FRAME_INTERVALS.len() - 1],
                ..default
            }
            .to_bytes()),
            req::GET_DEF => Ok(default.to_bytes()),
            req::GET_LEN => Ok((PROBE_LEN_UVC10 as u16).to_le_bytes().to_vec()),
            req::GET_INFO => Ok(vec![0x03]),
            _ => {
                self.request_error = ERR_INVALID_REQUEST;
                Err(Stall)
            }
        }
    }
}
