//! The descriptor set: lengths, the unit chain, formats, intervals.

use super::*;

#[test]
fn configuration_descriptor_lengths_are_consistent_and_parse_back() {
    for speed in [Speed::Super, Speed::High] {
        let c = descriptors::configuration_descriptor(speed);
        let ds = walk(&c);
        assert_eq!(usize::from(le16(&c, 2)), c.len(), "wTotalLength");
        assert_eq!(ds[0].0, dt::CONFIGURATION);
        assert_eq!(ds[1].0, dt::INTERFACE_ASSOCIATION);
        assert_eq!(
            (ds[1].2[2], ds[1].2[3], ds[1].2[4]),
            (0, 2, 0x0E),
            "IAD covers interfaces 0-1, video"
        );

        let interfaces: Vec<&Vec<u8>> = ds
            .iter()
            .filter(|d| d.0 == dt::INTERFACE)
            .map(|d| &d.2)
            .collect();
        assert_eq!(interfaces.len(), c[4] as usize, "bNumInterfaces");
        assert_eq!(
            (interfaces[0][2], interfaces[0][6]),
            (0, 1),
            "VC interface 0"
        );
        assert_eq!(
            (interfaces[1][2], interfaces[1][6], interfaces[1][4]),
            (1, 2, 1),
            "VS interface 1, 1 ep"
        );

        // VC header: bcdUVC 1.00 and wTotalLength = the class-specific VC descriptors.
        let vc_start = ds
            .iter()
            .position(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x01)
            .unwrap();
        let header = &ds[vc_start].2;
        assert_eq!(le16(header, 3), 0x0100);
        let vc_len: usize = ds[vc_start..]
            .iter()
            .take_while(|d| d.0 == dt::CS_INTERFACE)
            .map(|d| d.2.len())
            .sum();
        assert_eq!(usize::from(le16(header, 5)), vc_len);
        assert_eq!(header[12], 1, "baInterfaceNr");
        // The chain CT 1 → PU 2 → OT 3.
        let ct = &ds[vc_start + 1].2;
        assert_eq!((ct[2], ct[3], le16(ct, 4)), (0x02, 1, 0x0201));
        let pu = &ds[vc_start + 2].2;
        assert_eq!(
            (pu[2], pu[3], pu[4], pu[7], pu[8], pu[9]),
            (0x05, 2, 1, 2, 0x3F, 0x02)
        );
        let ot = &ds[vc_start + 3].2;
        assert_eq!((ot[2], ot[3], le16(ot, 4), ot[7]), (0x03, 3, 0x0101, 2));

        // VS input header: two formats, wTotalLength = the class-specific VS descriptors.
        // Class-specific subtypes mean different things per interface: walk the VS part
        // (everything after the second interface descriptor) separately.
        let vs_if = ds.iter().rposition(|d| d.0 == dt::INTERFACE).unwrap();
        let vs_start = vs_if + 1;
        assert_eq!(
            (ds[vs_start].0, ds[vs_start].1, ds[vs_start].2[3]),
            (dt::CS_INTERFACE, 0x01, 2)
        );
        let vs = &ds[vs_start].2;
        let vs_len: usize = ds[vs_start..]
            .iter()
            .take_while(|d| d.0 == dt::CS_INTERFACE)
            .map(|d| d.2.len())
            .sum();
        assert_eq!(usize::from(le16(vs, 4)), vs_len);
        assert_eq!(
            (vs[6], vs[8]),
            (VIDEO_ENDPOINT, 3),
            "endpoint and terminal link"
        );

        let formats: Vec<&Vec<u8>> = ds[vs_start..]
            .iter()
            .filter(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x04)
            .map(|d| &d.2)
            .collect();
        assert_eq!(formats.len(), 2);
        assert_eq!(&formats[0][5..9], b"YUY2");
        assert_eq!((formats[0][3], formats[0][21]), (1, 16));
        assert_eq!(&formats[1][5..9], b"Y800");
        assert_eq!((formats[1][3], formats[1][21]), (2, 8));
        let frames: Vec<&Vec<u8>> = ds[vs_start..]
            .iter()
            .filter(|d| d.0 == dt::CS_INTERFACE && d.1 == 0x05)
            .map(|d| &d.2)
            .collect();
        assert_eq!(frames.len(), 2);
        for (f, fmt) in frames.iter().zip(PixelFormat::ALL) {
            assert_eq!((le16(f, 5), le16(f, 7)), (608, 608));
            assert_eq!(
                le32(f, 17) as usize,
                fmt.frame_bytes(),
                "dwMaxVideoFrameBufferSize"
            );
            assert_eq!(le32(f, 21), 333_333, "default interval 30 fps");
            assert_eq!(f[25], 4);
            let intervals: Vec<u32> = (0..4).map(|i| le32(f, 26 + 4 * i)).collect();
            assert_eq!(intervals, FRAME_INTERVALS);
        }

        let eps: Vec<&Vec<u8>> = ds
            .iter()
            .filter(|d| d.0 == dt::ENDPOINT)
            .map(|d| &d.2)
            .collect();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            (eps[0][2], eps[0][3], le16(eps[0], 4)),
            (0x83, 0x02, speed.bulk_packet_size())
        );
        let companion = ds.iter().any(|d| d.0 == dt::SS_ENDPOINT_COMPANION);
        assert_eq!(companion, speed == Speed::Super);
        if speed == Speed::Super {
            assert_eq!(
                ds.last().unwrap().0,
                dt::SS_ENDPOINT_COMPANION,
                "companion follows its endpoint"
            );
        }
    }
}

#[test]
fn device_bos_and_string_descriptors() {
    let d = descriptors::device_descriptor(Speed::Super);
    assert_eq!(d.len(), 18);
    assert_eq!(
        (le16(&d, 2), d[7], le16(&d, 8), le16(&d, 10)),
        (0x0300, 9, 0x04B4, 0x00F9)
    );
    let d = descriptors::device_descriptor(Speed::High);
    assert_eq!((le16(&d, 2), d[7], le16(&d, 10)), (0x0200, 64, 0x00F8));
    let bos = descriptors::bos_descriptor();
    assert_eq!(usize::from(le16(&bos, 2)), bos.len());
    let caps = walk(&bos);
    assert_eq!(caps.len(), 1 + usize::from(bos[4]));
    assert_eq!((caps[1].0, caps[1].2[2]), (dt::DEVICE_CAPABILITY, 0x03));
    assert_eq!(
        descriptors::string_descriptor(0).unwrap(),
        [4, 3, 0x09, 0x04]
    );
    let s = descriptors::string_descriptor(2).unwrap();
    let text: Vec<u16> = s[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&text).unwrap(), descriptors::STRINGS[1]);
    assert_eq!(usize::from(s[0]), s.len());
    assert!(descriptors::string_descriptor(9).is_none());
}
