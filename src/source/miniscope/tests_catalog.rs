//! The catalog: the embedded data parses and is faithful to the reference; the sendCommand
//! schema's scalar forms and placeholders; the control-value conversions (docs/miniscope.md).

use super::catalog::{Catalog, CatalogError, ControlDef};
use super::controls::{ControlError, ControlValue, control_packets, leds_off_packets};
use super::send_command::{Protocol, SendCommand, TemplateByte, ValuePart};
use super::test_rig::{bytes_of, packets, v4_bno};

fn parse_command(json: &str) -> Result<SendCommand, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn builtin_catalog_parses_with_the_reference_devices() {
    let c = Catalog::builtin().unwrap();
    let names: Vec<&str> = c.devices.iter().map(|d| d.device_type.as_str()).collect();
    assert_eq!(
        names,
        [
            "Miniscope_V4_BNO",
            "Miniscope_V4",
            "Miniscope_V4_2C_Manual",
            "Miniscope_V3",
            "Minicam-Mono-XGA",
            "Siminiscope_1024X768"
        ]
    );
    let v4 = c.device("Miniscope_V4_BNO").unwrap();
    assert_eq!(
        (v4.width, v4.height, v4.sensor.as_str()),
        (608, 608, "PYTHON480")
    );
    assert_eq!(v4.wire_frame_bytes(), 739_328);
    assert!(v4.head_orientation && v4.complete);
    let controls: Vec<&str> = v4.control_settings.iter().map(ControlDef::name).collect();
    assert_eq!(controls, ["gain", "frameRate", "led0", "ewl"]);
    assert_eq!(c.device("Miniscope_V3").unwrap().uvc_frame_index(), Some(4));
    assert_eq!(
        c.device("Minicam-Mono-XGA").unwrap().uvc_frame_index(),
        Some(5)
    );
    assert!(!c.device("Miniscope_V3").unwrap().complete);
    let err = c.device("Miniscope_V5").unwrap_err().to_string();
    assert!(
        err.contains("Miniscope_V5") && err.contains("Miniscope_V4_BNO"),
        "{err}"
    );
}

#[test]
fn frame_rate_choices_match_the_reference() {
    let c = Catalog::builtin().unwrap();
    let choices = |name: &str| match c.device(name).unwrap().control("frameRate") {
        Some(ControlDef::SpinBox(s)) => (s.display_text_values.clone(), s.output_values.clone()),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        choices("Miniscope_V4_BNO"),
        (
            vec![2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0],
            vec![50000, 20000, 10000, 6667, 5000, 4000, 3300]
        )
    );
    assert_eq!(
        choices("Miniscope_V4"),
        (
            vec![10.0, 15.0, 20.0, 25.0, 30.0],
            vec![10000, 6667, 5000, 4000, 3300]
        )
    );
    assert_eq!(choices("Siminiscope_1024X768").1, [2048, 1536, 766]);
    let two_fps = packets(&v4_bno(), "frameRate", ControlValue::Choice("2FPS".into()));
    assert_eq!(
        bytes_of(&two_fps),
        [vec![0x20, 0x05, 0x00, 0xC9, 0xC3, 0x50]]
    );
}

#[test]
fn send_command_scalars_take_every_documented_form() {
    let c = parse_command(
        r#"{"protocol":"I2C","addressW":"0b10100000","regLength":1,"reg0":"17",
            "dataLength":"4","data0":114,"data1":"valueH24","data2":"valueH16",
            "data3":"value","description":"x","deviceK":"y"}"#,
    )
    .unwrap();
    assert_eq!((c.address, c.reg_len), (0xA0, 1));
    assert_eq!(
        c.bytes,
        [
            TemplateByte::Const(17),
            TemplateByte::Const(114),
            TemplateByte::Value(ValuePart::H24),
            TemplateByte::Value(ValuePart::H16),
            TemplateByte::Value(ValuePart::L),
        ]
    );
    let p = c.render(0x1122_3344, 0x5566).unwrap();
    assert_eq!(p.packet.as_bytes(), [0xA0, 17, 114, 0x11, 0x22, 0x44]);
    let d = parse_command(
        r#"{"protocol":"I2C","addressW":"0x20","regLength":"0","dataLength":"4",
            "data0":"valueH","data1":"valueL","data2":"value2H","data3":"value2L"}"#,
    )
    .unwrap();
    assert!(d.uses_value2() && !c.uses_value2());
    let p = d.render(0x1234, 0xABCD).unwrap();
    assert_eq!(p.packet.as_bytes(), [0x20, 0x12, 0x34, 0xAB, 0xCD]);
    let spi = parse_command(
        r#"{"protocol":"SPI","addressW":"0x20","regLength":"1","reg0":"0x01","dataLength":"0"}"#,
    )
    .unwrap();
    assert_eq!(spi.protocol, Protocol::Spi);
}

#[test]
fn impossible_send_commands_are_refused_with_the_reason() {
    let cases = [
        (
            r#"{"protocol":"I2C","addressW":"0x20","regLength":"1","reg0":"0x01","dataLength":"2","data0":"0x00"}"#,
            "data1",
        ),
        (
            r#"{"protocol":"I2C","addressW":"0x21","regLength":"1","reg0":"0x01","dataLength":"0"}"#,
            "odd address",
        ),
        (
            r#"{"protocol":"I2C","addressW":"0x20","regLength":"0","dataLength":"0"}"#,
            "address only",
        ),
        (
            r#"{"protocol":"I2C","addressW":"0x20","regLength":"2","reg0":"1","reg1":"2","dataLength":"4","data0":"1","data1":"2","data2":"3","data3":"4"}"#,
            "at most 6",
        ),
        (
            r#"{"protocol":"I2C","addressW":"0x20","regLength":"1","reg0":"0x100","dataLength":"0"}"#,
            "reg0",
        ),
        (
            r#"{"protocol":"I2C","addressW":"0x20","regLength":"1","reg0":"valueX","dataLength":"0"}"#,
            "valueX",
        ),
        (
            r#"{"protocol":"USB","addressW":"0x20","regLength":"1","reg0":"1","dataLength":"0"}"#,
            "protocol",
        ),
    ];
    for (json, needle) in cases {
        let err = parse_command(json).unwrap_err().to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

#[test]
fn catalog_errors_name_the_device_and_control() {
    let json = r#"{"devices":[{"deviceType":"X","sensor":"S","frameRate":30,"width":1,
        "height":1,"pixelClock":1,"headOrientation":false,"isColor":false,"complete":true,
        "provenance":"","initialize":[],"controlSettings":[{"controlType":"spinBox",
        "name":"gain","labels":["A","B"],"displayTextValues":[1],"outputValues":[1,2],
        "startValue":"A","sendCommand":[{"protocol":"I2C","addressW":"0x20","regLength":"1",
        "reg0":"1","dataLength":"0"}]}]}]}"#;
    let err = Catalog::from_json(json).unwrap_err();
    assert!(
        matches!(&err, CatalogError::BadControl { device, control, .. }
        if device == "X" && control == "gain"),
        "{err}"
    );
    let typo = json.replace("\"isColor\"", "\"isColour\"");
    let err = Catalog::from_json(&typo).unwrap_err().to_string();
    assert!(err.contains("isColour"), "{err}");
}

/// docs/miniscope.md: QML truncation (LED 50 % → 127, where rounding would give 128), fine steps, the
/// EWL offset, the V3 DAC shift, the MiniCAM LED scale, ranges and choices.
#[test]
fn control_values_convert_as_the_official_app_does() {
    let c = Catalog::builtin().unwrap();
    let v4 = c.device("Miniscope_V4_BNO").unwrap();
    let Some(ControlDef::Slider(led)) = v4.control("led0") else {
        panic!("led0 is a slider")
    };
    assert_eq!(led.i2c_value(50.0, false).unwrap(), 127);
    assert_eq!(led.i2c_value(10.0, false).unwrap(), 229);
    assert_eq!(led.i2c_value(33.3, false).unwrap(), 170);
    assert_eq!(led.i2c_value(200.0, true).unwrap(), 55);
    let Some(ControlDef::Slider(ewl)) = v4.control("ewl") else {
        panic!("ewl is a slider")
    };
    assert_eq!(ewl.i2c_value(-127.0, false).unwrap(), 0);
    assert_eq!(ewl.i2c_value(127.0, false).unwrap(), 254);
    assert!(matches!(
        ewl.i2c_value(127.5, false),
        Err(ControlError::OutOfRange { .. })
    ));
    assert!(matches!(
        ewl.i2c_value(0.0, true),
        Err(ControlError::WrongKind { .. })
    ));
    let v3 = c.device("Miniscope_V3").unwrap();
    let dac = control_packets(v3, "led0", &ControlValue::Slider(128.0)).unwrap();
    assert_eq!(bytes_of(&dac), [vec![0x98, 0x08, 0x00]]);
    let minicam = c.device("Minicam-Mono-XGA").unwrap();
    let lm = control_packets(minicam, "led0", &ControlValue::Slider(100.0)).unwrap();
    assert_eq!(bytes_of(&lm), [vec![0x6C, 0xA0, 31]]);
    let err = control_packets(v4, "gain", &ControlValue::Choice("Max".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Low, Medium, High"), "{err}");
    assert!(matches!(
        control_packets(v4, "gain", &ControlValue::Slider(1.0)),
        Err(ControlError::WrongKind { .. })
    ));
    assert!(matches!(
        control_packets(v4, "led1", &ControlValue::Slider(1.0)),
        Err(ControlError::UnknownControl { .. })
    ));
}

#[test]
fn leds_off_is_the_bonsai_shutdown_pair_on_a_v4() {
    let v4 = v4_bno();
    assert_eq!(
        bytes_of(&leds_off_packets(&v4).unwrap()),
        [vec![0x20, 0x01, 0xFF], vec![0x58, 0x00, 0x72, 0xFF]]
    );
    let c = Catalog::builtin().unwrap();
    let two_colour = c.device("Miniscope_V4_2C_Manual").unwrap();
    assert_eq!(
        bytes_of(&leds_off_packets(two_colour).unwrap()),
        [
            vec![0x20, 0x01, 0xFF],
            vec![0x58, 0x00, 0xFF],
            vec![0x20, 0x02, 0xFF],
            vec![0x58, 0x01, 0xFF]
        ]
    );
}
