//! Creates the whole NWB 2.8 tree of a session file before SWMR starts (see
//! `docs/file-format.md`): metadata, devices, one series group per stream and the gap table.

use hdf5::{File, Group};

use super::h5::{self, H5Result};
use super::{RecorderSetup, StreamSetup};
use crate::config::SessionConfig;
use crate::frame::{Behavior, KEYPOINT_NAMES};
use crate::source::StreamKind;

/// The NWB core version the file declares.
pub const NWB_VERSION: &str = "2.8.0";

/// Where each stream's objects live in the file.
pub struct StreamPaths {
    /// The `OnePhotonSeries` / `ImageSeries` group.
    pub series: String,
    /// The device frame counter `TimeSeries`.
    pub counter: String,
    /// The host dequeue time `TimeSeries`.
    pub host_time: String,
    /// Head orientation `TimeSeries` (Miniscopes only).
    pub head_orientation: Option<String>,
    /// Ground-truth behavior and keypoint `TimeSeries` (synthetic cameras only).
    pub ground_truth: Option<(String, String)>,
}

impl StreamPaths {
    /// The paths of a stream's objects.
    pub fn of(stream: &StreamSetup) -> Self {
        let name = &stream.info.name;
        match stream.info.kind {
            StreamKind::Miniscope => Self {
                series: format!("/acquisition/{name}"),
                counter: format!("/acquisition/{name}DAQFrameNumber"),
                host_time: format!("/acquisition/{name}HostTime"),
                head_orientation: Some(format!("/acquisition/{name}HeadOrientation")),
                ground_truth: None,
            },
            StreamKind::BehaviorCamera => Self {
                series: format!("/acquisition/{name}"),
                counter: format!("/acquisition/{name}FrameNumber"),
                host_time: format!("/acquisition/{name}HostTime"),
                head_orientation: None,
                ground_truth: stream.ground_truth.then(|| {
                    (
                        format!("/acquisition/{name}GroundTruthBehavior"),
                        format!("/acquisition/{name}GroundTruthKeypoints"),
                    )
                }),
            },
        }
    }
}

/// Writes root attributes, required datasets, `general/`, devices and cached specifications.
pub fn create_file_skeleton(file: &File, setup: &RecorderSetup) -> H5Result<()> {
    let root: &Group = file;
    h5::set_type(root, "NWBFile", "core")?;
    h5::attr_str(root, "nwb_version", NWB_VERSION)?;
    let start = setup.clock.start_iso8601();
    let created =
        h5::extensible::<hdf5::types::VarLenUnicode>(root, "file_create_date", &[], 8, None)?;
    created.resize(1)?;
    created.write_slice(
        &[h5::vstr(
            &chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        )],
        0..1,
    )?;
    h5::str_dataset(root, "identifier", &uuid::Uuid::new_v4().to_string())?;
    h5::str_dataset(root, "session_description", &setup.session.description)?;
    h5::str_dataset(root, "session_start_time", &start)?;
    h5::str_dataset(root, "timestamps_reference_time", &start)?;
    for group in [
        "acquisition",
        "analysis",
        "processing",
        "stimulus",
        "general",
        "intervals",
    ] {
        root.create_group(group)?;
    }
    let stimulus = root.group("stimulus")?;
    stimulus.create_group("presentation")?;
    stimulus.create_group("templates")?;
    write_general(&root.group("general")?, setup)?;
    write_specifications(file)?;
    h5::attr_object_ref(root, ".specloc", file, "/specifications")
}

fn write_general(general: &Group, setup: &RecorderSetup) -> H5Result<()> {
    let s: &SessionConfig = &setup.session;
    if !s.experimenter.is_empty() {
        let names: Vec<&str> = s.experimenter.iter().map(String::as_str).collect();
        h5::str_array_dataset(general, "experimenter", &names)?;
    }
    h5::str_dataset(general, "experiment_description", &s.description)?;
    if !s.institution.is_empty() {
        h5::str_dataset(general, "institution", &s.institution)?;
    }
    if !s.lab.is_empty() {
        h5::str_dataset(general, "lab", &s.lab)?;
    }
    if !s.keywords.is_empty() {
        let words: Vec<&str> = s.keywords.iter().map(String::as_str).collect();
        h5::str_array_dataset(general, "keywords", &words)?;
    }
    h5::str_dataset(general, "session_id", &setup.session_name)?;
    h5::str_dataset(general, "data_collection", &setup.config_text)?;
    h5::str_dataset(
        general,
        "notes",
        "Recording in progress (or interrupted before a clean stop).",
    )?;
    let version = env!("CARGO_PKG_VERSION");
    let script = h5::str_dataset(general, "source_script", &format!("behavd {version}"))?;
    h5::attr_str(&script, "file_name", "behavd")?;
    let (major, minor, patch) = hdf5::library_version();
    let hdf5_version = format!("{major}.{minor}.{patch}");
    let generated: Vec<hdf5::types::VarLenUnicode> = ["behavd", version, "libhdf5", &hdf5_version]
        .iter()
        .map(|v| h5::vstr(v))
        .collect();
    let generated = ndarray::Array2::from_shape_vec((2, 2), generated).expect("2x2");
    general
        .new_dataset_builder()
        .with_data(&generated)
        .create("was_generated_by")?;

    let subject = h5::typed_group(general, "subject", "Subject", "core")?;
    h5::str_dataset(&subject, "subject_id", &s.subject.id)?;
    h5::str_dataset(&subject, "species", &s.subject.species)?;
    h5::str_dataset(&subject, "sex", &s.subject.sex)?;
    let age = h5::str_dataset(&subject, "age", &s.subject.age)?;
    h5::attr_str(&age, "reference", "birth")?;
    if !s.subject.strain.is_empty() {
        h5::str_dataset(&subject, "strain", &s.subject.strain)?;
    }
    if !s.subject.description.is_empty() {
        h5::str_dataset(&subject, "description", &s.subject.description)?;
    }

    let devices = general.create_group("devices")?;
    let rig = h5::typed_group(&devices, "AcquisitionRig", "Device", "core")?;
    let host =
        hostname::get().map_or_else(|_| "unknown".into(), |h| h.to_string_lossy().into_owned());
    h5::attr_str(
        &rig,
        "description",
        &format!("Rig '{}': host {host}", s.rig),
    )?;
    for stream in &setup.streams {
        let device = h5::typed_group(&devices, &stream.info.name, "Device", "core")?;
        h5::attr_str(&device, "description", &stream.info.device_description)?;
    }
    // Stimulators: what each device reported about itself when it connected.
    for d in setup.triggers.iter().flat_map(|t| &t.devices) {
        let name = format!("Stimulator_{}", d.name);
        if devices.group(&name).is_ok() {
            continue;
        }
        let device = h5::typed_group(&devices, &name, "Device", "core")?;
        h5::attr_str(&device, "description", &d.description)?;
    }
    if setup
        .streams
        .iter()
        .any(|s| s.info.kind == StreamKind::Miniscope)
    {
        general.create_group("optophysiology")?;
    }
    Ok(())
}

fn write_specifications(file: &File) -> H5Result<()> {
    let specs = file.create_group("specifications")?;
    for doc in super::spec::SPEC_DOCUMENTS {
        let namespace = match specs.group(doc.namespace) {
            Ok(g) => g,
            Err(_) => specs.create_group(doc.namespace)?,
        };
        let version = match namespace.group(doc.version) {
            Ok(g) => g,
            Err(_) => namespace.create_group(doc.version)?,
        };
        h5::str_dataset(&version, doc.name, doc.json)?;
    }
    Ok(())
}

/// Creates the `ImagingPlane` of a Miniscope stream and returns its path.
pub fn create_imaging_plane(
    file: &File,
    setup: &RecorderSetup,
    stream: &StreamSetup,
) -> H5Result<String> {
    let optophysiology = file.group("/general/optophysiology")?;
    let name = format!("{}ImagingPlane", stream.info.name);
    let imaging = &setup.session.imaging;
    let plane = h5::typed_group(&optophysiology, &name, "ImagingPlane", "core")?;
    h5::str_dataset(&plane, "description", &imaging.description)?;
    h5::scalar_dataset(&plane, "excitation_lambda", imaging.excitation_nm)?;
    h5::scalar_dataset(&plane, "imaging_rate", stream.info.nominal_fps as f32)?;
    h5::str_dataset(&plane, "indicator", &imaging.indicator)?;
    h5::str_dataset(&plane, "location", &imaging.location)?;
    plane.link_soft(&format!("/general/devices/{}", stream.info.name), "device")?;
    let channel = h5::typed_group(&plane, "OpticalChannel", "OpticalChannel", "core")?;
    h5::str_dataset(&channel, "description", "green emission channel")?;
    h5::scalar_dataset(&channel, "emission_lambda", imaging.emission_nm)?;
    Ok(format!("/general/optophysiology/{name}"))
}

/// Text of the ground-truth behavior code table, for descriptions.
pub fn behavior_codes() -> String {
    Behavior::ALL
        .iter()
        .map(|b| format!("{}={}", *b as u8, b.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text of the ground-truth keypoint order, for descriptions.
pub fn keypoint_order() -> String {
    KEYPOINT_NAMES.join(", ")
}
