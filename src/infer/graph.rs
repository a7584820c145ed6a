//! What a loaded ONNX graph declares: tensor types and shapes by name, shape checks against
//! what behavd will feed, and the error texts that name them.

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use super::InferError;

pub(super) fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Checks a graph shape (with -1 for dynamic dims) against the shape behavd will feed.
pub(super) fn check_shape(what: &str, model: &[i64], ours: &[i64]) -> Result<(), InferError> {
    let matches =
        model.len() == ours.len() && model.iter().zip(ours).all(|(m, o)| *m < 0 || m == o);
    if matches {
        Ok(())
    } else {
        Err(InferError::spec(
            what,
            format!(
                "the model expects shape {} but the config gives {}",
                shape_text(model),
                shape_text(ours)
            ),
        ))
    }
}

/// Resolves dynamic dims of an output shape (batch → 1); errors on other dynamic dims.
pub(super) fn concrete(what: &str, shape: &[i64]) -> Result<Vec<i64>, InferError> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match (i, d) {
            (_, d) if d >= 0 => Ok(d),
            (0, _) => Ok(1),
            _ => Err(InferError::spec(
                what,
                format!(
                    "shape {} has a dynamic dimension other than the batch; behavd needs \
                 fixed output sizes (re-export with static shapes)",
                    shape_text(shape)
                ),
            )),
        })
        .collect()
}

pub(super) fn tensor_info<'a>(
    session: &'a Session,
    name: &str,
    inputs: bool,
) -> Option<(TensorElementType, &'a [i64])> {
    let outlets = if inputs {
        session.inputs()
    } else {
        session.outputs()
    };
    outlets
        .iter()
        .find(|o| o.name() == name)
        .and_then(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => Some((*ty, &shape[..])),
            _ => None,
        })
}

pub(super) fn names(session: &Session, inputs: bool) -> String {
    let outlets = if inputs {
        session.inputs()
    } else {
        session.outputs()
    };
    outlets
        .iter()
        .map(|o| o.name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
