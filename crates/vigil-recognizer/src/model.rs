//! Reading dlib's `dlib_face_recognition_resnet_model_v1.dat`.
//!
//! dlib serialises a network as nested layers: the loss layer, then each
//! layer's version number from the top of the stack down to the input layer,
//! then, from the bottom up, each layer's own parameters followed by its
//! training state (flags and tensors that a saved, cleaned network leaves
//! empty), all in dlib's primitive encodings ([`crate::serial`]).
//!
//! The file is read against the one architecture vigil runs (the `anet_type`
//! of dlib's `dnn_face_recognition_ex.cpp`), layer by layer, so a file of a
//! different network, a truncated file or random bytes is refused with the
//! first place where it disagrees instead of being half-loaded.

use std::io::Read;

use crate::conv::PackedConv;
use crate::serial::{FormatError, Reader};
use crate::LoadError;

impl From<FormatError> for LoadError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Truncated { offset, what } => LoadError::Truncated { offset, what },
            FormatError::Malformed { offset, what } => LoadError::Malformed { offset, what },
            FormatError::Read(e) => LoadError::Read(e),
        }
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> LoadError {
    LoadError::Malformed {
        offset,
        what: what.into(),
    }
}

/// Chip side the network was trained on.
pub(crate) const INPUT_SIZE: usize = 150;
/// Length of the descriptor.
pub(crate) const DESCRIPTOR_LEN: usize = 128;

/// One residual block: two 3×3 convolutions (the first with `stride`), each
/// followed by an affine layer, the first by a ReLU; the block's input is
/// added back (average-pooled 2×2 when the block halves the resolution) and
/// the sum goes through a ReLU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    pub filters: usize,
    pub down: bool,
}

/// The residual stack of `anet_type`, input side first: `alevel4` (three
/// blocks of 32), `alevel3` (64, down then three), `alevel2` (128, down then
/// two), `alevel1` (256, down then two), `alevel0` (256, down).
pub(crate) const BLOCKS: [BlockShape; 14] = {
    const fn b(filters: usize, down: bool) -> BlockShape {
        BlockShape { filters, down }
    }
    [
        b(32, false),
        b(32, false),
        b(32, false),
        b(64, true),
        b(64, false),
        b(64, false),
        b(64, false),
        b(128, true),
        b(128, false),
        b(128, false),
        b(256, true),
        b(256, false),
        b(256, false),
        b(256, true),
    ]
};

/// Filters and kernel size of the first convolution (7×7, stride 2).
pub(crate) const STEM_FILTERS: usize = 32;
pub(crate) const STEM_KERNEL: usize = 7;

/// One layer of the stack as dlib names it, in computation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Con {
        filters: usize,
        size: usize,
        stride: usize,
    },
    Affine,
    Relu,
    MaxPool,
    AvgPool,
    AvgPoolAll,
    AddPrev(usize),
    Tag(usize),
    Skip(usize),
    Fc(usize),
}

impl Spec {
    /// Tags and skips are bookkeeping layers with no parameters of their
    /// own (`add_tag_layer`, `add_skip_layer`); everything else is an
    /// `add_layer` around a layer object.
    fn is_add_layer(self) -> bool {
        !matches!(self, Spec::Tag(_) | Spec::Skip(_))
    }

    fn name(self) -> &'static str {
        match self {
            Spec::Con { .. } => "con",
            Spec::Affine => "affine",
            Spec::Relu => "relu",
            Spec::MaxPool => "max_pool",
            Spec::AvgPool => "avg_pool",
            Spec::AvgPoolAll => "avg_pool_everything",
            Spec::AddPrev(_) => "add_prev",
            Spec::Tag(_) => "tag",
            Spec::Skip(_) => "skip",
            Spec::Fc(_) => "fc_no_bias",
        }
    }
}

/// `anet_type`, input side first.
fn architecture() -> Vec<Spec> {
    let mut specs = vec![
        Spec::Con {
            filters: STEM_FILTERS,
            size: STEM_KERNEL,
            stride: 2,
        },
        Spec::Affine,
        Spec::Relu,
        Spec::MaxPool,
    ];
    for block in BLOCKS {
        let f = block.filters;
        specs.push(Spec::Tag(1));
        specs.push(Spec::Con {
            filters: f,
            size: 3,
            stride: if block.down { 2 } else { 1 },
        });
        specs.extend([Spec::Affine, Spec::Relu]);
        specs.push(Spec::Con {
            filters: f,
            size: 3,
            stride: 1,
        });
        specs.push(Spec::Affine);
        if block.down {
            specs.extend([Spec::Tag(2), Spec::Skip(1), Spec::AvgPool, Spec::AddPrev(2)]);
        } else {
            specs.push(Spec::AddPrev(1));
        }
        specs.push(Spec::Relu);
    }
    specs.extend([Spec::AvgPoolAll, Spec::Fc(DESCRIPTOR_LEN)]);
    specs
}

/// A convolution's weights as stored, `[filter][input channel][row][column]`,
/// and one bias per filter (zero when the file disables the bias).
pub(crate) struct ConvParams {
    pub filters: usize,
    pub channels: usize,
    pub size: usize,
    pub stride: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// `y = gamma · x + beta` per channel (dlib's inference-time batch norm).
pub(crate) struct AffineParams {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// A residual block with its convolutions packed (affine layers folded in).
pub(crate) struct BlockParams {
    pub shape: BlockShape,
    pub channels_in: usize,
    pub conv_a: PackedConv,
    pub relu_a: bool,
    pub conv_b: PackedConv,
    pub relu_out: bool,
}

/// Everything the forward pass needs.
pub(crate) struct DlibModel {
    /// Subtracted from each of R, G, B before dividing by 256.
    pub input_mean: [f32; 3],
    pub stem: PackedConv,
    pub stem_relu: bool,
    pub blocks: Vec<BlockParams>,
    /// `[input][output]`: the descriptor is `features · fc`.
    pub fc: Vec<f32>,
}

/// A layer's parameters between reading and assembling. A convolution is
/// packed as soon as its affine layer (the next one) is read, so at most one
/// layer's weights exist twice while loading.
enum Parsed {
    Con(ConvParams),
    Packed(PackedConv),
    Relu(bool),
    Plain,
}

/// Reads a parameter tensor that must hold `expected` floats: the shape is
/// checked before any value is read, so garbage dimensions never allocate.
fn params<R: Read>(
    r: &mut Reader<R>,
    layer: usize,
    spec: Spec,
    expected: usize,
) -> Result<Vec<f32>, LoadError> {
    let dims = r.tensor_header(&format!("{} params", spec.name()))?;
    let len = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    if len != Some(expected as u64) {
        return Err(shape_error(
            layer,
            spec,
            "parameter count",
            expected.to_string(),
            format!("{dims:?}"),
        ));
    }
    let values = r.tensor_values(expected, "parameters")?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(LoadError::BadValue {
            layer,
            kind: spec.name(),
            what: format!("parameter {i} is {}", values[i]),
        });
    }
    Ok(values)
}

fn shape_error(layer: usize, spec: Spec, what: &str, expected: String, found: String) -> LoadError {
    LoadError::WrongShape {
        layer,
        kind: spec.name(),
        what: what.to_string(),
        expected,
        found,
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(
    layer: usize,
    spec: Spec,
    what: &str,
    expected: T,
    found: T,
) -> Result<(), LoadError> {
    if expected == found {
        Ok(())
    } else {
        Err(shape_error(
            layer,
            spec,
            what,
            format!("{expected:?}"),
            format!("{found:?}"),
        ))
    }
}

/// Expects the layer-type tag `found` to be one of `accepted`.
fn expect_layer(layer: usize, spec: Spec, accepted: &[&str], found: &str) -> Result<(), LoadError> {
    if accepted.contains(&found) {
        Ok(())
    } else {
        Err(LoadError::UnexpectedLayer {
            layer,
            expected: format!("{} ({})", spec.name(), accepted.join(" or ")),
            found: found.to_string(),
        })
    }
}

fn parse_con<R: Read>(
    r: &mut Reader<R>,
    layer: usize,
    spec: Spec,
    channels: usize,
    (filters, size, stride): (usize, usize, usize),
) -> Result<ConvParams, LoadError> {
    let version = r.string("con version")?;
    expect_layer(layer, spec, &["con_4", "con_5", "con_6"], &version)?;
    let weights_len = filters * channels * size * size;
    let mut values = params(r, layer, spec, weights_len + filters)?;
    let num_filters = r.int(8, "con num_filters")?;
    let nr = r.int(8, "con nr")?;
    let nc = r.int(8, "con nc")?;
    let stride_y = r.int(4, "con stride_y")?;
    let stride_x = r.int(4, "con stride_x")?;
    let padding_y = r.int(4, "con padding_y")?;
    let padding_x = r.int(4, "con padding_x")?;
    let filters_alias = r.alias("con filters")?;
    let biases_alias = r.alias("con biases")?;
    for what in [
        "learning rate",
        "weight decay",
        "bias learning rate",
        "bias weight decay",
    ] {
        r.float(what)?;
    }
    let use_bias = if version == "con_4" {
        true
    } else {
        r.boolean("con use_bias")?
    };
    let use_relu = if version == "con_6" {
        r.boolean("con use_relu")?
    } else {
        false
    };

    let (f, k, s) = (filters as i64, size as i64, stride as i64);
    expect_eq(layer, spec, "num_filters", f, num_filters)?;
    expect_eq(layer, spec, "kernel (rows, columns)", (k, k), (nr, nc))?;
    expect_eq(layer, spec, "stride (y, x)", (s, s), (stride_y, stride_x))?;
    // dlib's default: no padding for strided convolutions, "same" otherwise.
    let padding = if stride != 1 { 0 } else { k / 2 };
    expect_eq(
        layer,
        spec,
        "padding (y, x)",
        (padding, padding),
        (padding_y, padding_x),
    )?;
    expect_eq(
        layer,
        spec,
        "filters",
        [filters as u64, channels as u64, size as u64, size as u64],
        filters_alias,
    )?;
    expect_eq(layer, spec, "biases", [1, filters as u64, 1, 1], biases_alias)?;
    if use_relu {
        return Err(LoadError::UnexpectedLayer {
            layer,
            expected: "con without a fused relu".into(),
            found: "con with use_relu".into(),
        });
    }
    let mut bias = values.split_off(weights_len);
    if !use_bias {
        bias.fill(0.0);
    }
    Ok(ConvParams {
        filters,
        channels,
        size,
        stride,
        weights: values,
        bias,
    })
}

fn parse_affine<R: Read>(
    r: &mut Reader<R>,
    layer: usize,
    spec: Spec,
    channels: usize,
) -> Result<AffineParams, LoadError> {
    let version = r.string("affine version")?;
    expect_layer(layer, spec, &["affine_", "affine_2"], &version)?;
    let mut gamma = params(r, layer, spec, 2 * channels)?;
    let gamma_alias = r.alias("affine gamma")?;
    let beta_alias = r.alias("affine beta")?;
    let mode = r.int(4, "affine mode")?;
    let disabled = if version == "affine_2" {
        r.boolean("affine disabled")?
    } else {
        false
    };
    let c = channels as u64;
    expect_eq(layer, spec, "gamma", [1, c, 1, 1], gamma_alias)?;
    expect_eq(layer, spec, "beta", [1, c, 1, 1], beta_alias)?;
    // 0 is CONV_MODE: one gamma and beta per channel, shared by all pixels.
    expect_eq(layer, spec, "mode", 0, mode)?;
    let mut beta = gamma.split_off(channels);
    if disabled {
        gamma.fill(1.0);
        beta.fill(0.0);
    }
    Ok(AffineParams { gamma, beta })
}

/// Pooling geometry: window rows and columns, strides, paddings.
fn parse_pool<R: Read>(
    r: &mut Reader<R>,
    layer: usize,
    spec: Spec,
    tag: &str,
    expected: [i64; 6],
) -> Result<(), LoadError> {
    let version = r.string("pool version")?;
    expect_layer(layer, spec, &[tag], &version)?;
    let mut found = [0i64; 6];
    for v in &mut found {
        *v = r.int(8, "pool geometry")?;
    }
    expect_eq(layer, spec, "window, stride and padding", expected, found)
}

fn parse_fc<R: Read>(
    r: &mut Reader<R>,
    layer: usize,
    spec: Spec,
    inputs: usize,
    outputs: usize,
) -> Result<Vec<f32>, LoadError> {
    let version = r.string("fc version")?;
    expect_layer(layer, spec, &["fc_2", "fc_3"], &version)?;
    let num_outputs = r.int(8, "fc num_outputs")?;
    let num_inputs = r.int(8, "fc num_inputs")?;
    expect_eq(
        layer,
        spec,
        "(outputs, inputs)",
        (outputs as i64, inputs as i64),
        (num_outputs, num_inputs),
    )?;
    let weights = params(r, layer, spec, inputs * outputs)?;
    let weights_alias = r.alias("fc weights")?;
    let _biases_alias = r.alias("fc biases")?;
    let bias_mode = r.int(4, "fc bias mode")?;
    for what in [
        "learning rate",
        "weight decay",
        "bias learning rate",
        "bias weight decay",
    ] {
        r.float(what)?;
    }
    if version == "fc_3" {
        r.boolean("fc use_bias")?;
    }
    // 1 is FC_NO_BIAS.
    expect_eq(layer, spec, "bias mode", 1, bias_mode)?;
    expect_eq(
        layer,
        spec,
        "weights",
        [inputs as u64, outputs as u64, 1, 1],
        weights_alias,
    )?;
    Ok(weights)
}

/// An `add_layer`'s training state after its parameters: three flags and
/// the gradient/output buffers, which a saved network normally leaves empty
/// but which are skipped whatever their size. Version 1 of `add_layer` has
/// no parameter gradient; the bottom layer's version 3 adds the sample
/// expansion factor.
fn skip_layer_state<R: Read>(r: &mut Reader<R>, version: u64, bottom: bool) -> Result<(), LoadError> {
    for what in ["setup called", "gradient stale", "output disabled"] {
        r.boolean(what)?;
    }
    r.skip_tensor("x_grad")?;
    r.skip_tensor("cached_output")?;
    if bottom {
        r.skip_tensor("grad_final")?;
        if version == 3 {
            r.int(8, "sample expansion factor")?;
        }
    } else if version == 2 {
        r.skip_tensor("params_grad")?;
    }
    Ok(())
}

/// Parses a whole model file from `src`, reading it once, front to back.
pub(crate) fn parse(src: impl Read) -> Result<DlibModel, LoadError> {
    let specs = architecture();
    let mut r = Reader::new(src);

    let loss_version = r.int(4, "loss layer version")?;
    if loss_version != 1 {
        return Err(malformed(
            0,
            format!("loss layer version {loss_version}, expected 1"),
        ));
    }
    let loss = r.string("loss layer")?;
    if loss != "loss_metric_" && loss != "loss_metric_2" {
        return Err(LoadError::UnexpectedLayer {
            layer: specs.len(),
            expected: "loss_metric".into(),
            found: loss,
        });
    }
    if loss == "loss_metric_2" {
        r.float("loss margin")?;
        r.float("loss distance threshold")?;
    }

    // The layers' version numbers, top of the stack first, up to the input
    // layer, whose name is the first thing that is not 1, 2 or 3: the
    // integer that breaks the run is the length of that name.
    let mut versions = Vec::with_capacity(specs.len());
    let (name_start, name_len) = loop {
        let start = r.pos;
        let v = r.int(8, "layer version or input layer name")?;
        if !(1..=3).contains(&v) {
            break (start, v);
        }
        versions.push(v as u64);
        if versions.len() > 4 * specs.len() {
            return Err(malformed(r.pos, "no input layer after the layer versions"));
        }
    };
    if versions.len() != specs.len() {
        return Err(LoadError::WrongLayerCount {
            expected: specs.len(),
            found: versions.len(),
        });
    }
    versions.reverse();
    for (i, (&spec, &v)) in specs.iter().zip(&versions).enumerate() {
        let ok = match spec {
            Spec::Tag(_) | Spec::Skip(_) => v == 1,
            _ if i == 0 => v == 2 || v == 3,
            _ => v == 1 || v == 2,
        };
        if !ok {
            return Err(LoadError::UnexpectedLayer {
                layer: i,
                expected: spec.name().to_string(),
                found: format!("a layer with serialisation version {v}"),
            });
        }
    }

    let name_len = u64::try_from(name_len).map_err(|_| malformed(name_start, "negative name length"))?;
    let input = r.string_of(name_len, name_start, "input layer")?;
    if input != "input_rgb_image_sized" {
        return Err(LoadError::UnexpectedLayer {
            layer: 0,
            expected: "input_rgb_image_sized".into(),
            found: input,
        });
    }
    let mut input_mean = [0f32; 3];
    for m in &mut input_mean {
        let at = r.pos;
        *m = r.float("input mean")? as f32;
        if !m.is_finite() {
            return Err(malformed(at, "input mean is not finite"));
        }
    }
    let (nr, nc) = (r.int(8, "input rows")?, r.int(8, "input columns")?);
    if (nr, nc) != (INPUT_SIZE as i64, INPUT_SIZE as i64) {
        return Err(LoadError::WrongShape {
            layer: 0,
            kind: "input_rgb_image_sized",
            what: "size".into(),
            expected: format!("{INPUT_SIZE}×{INPUT_SIZE}"),
            found: format!("{nr}×{nc}"),
        });
    }

    // Each layer's parameters, bottom up, with the channel count flowing
    // through the stack (tags remember it, skips restore it, add_prev takes
    // the larger of its two inputs as dlib's zero-extending sum does).
    let mut channels = 3usize;
    let mut tagged = [0usize; 3];
    let mut parsed = Vec::with_capacity(specs.len());
    for (i, (&spec, &version)) in specs.iter().zip(&versions).enumerate() {
        let p = match spec {
            Spec::Con {
                filters,
                size,
                stride,
            } => {
                let con = parse_con(&mut r, i, spec, channels, (filters, size, stride))?;
                channels = filters;
                Parsed::Con(con)
            }
            Spec::Affine => {
                let affine = parse_affine(&mut r, i, spec, channels)?;
                // The architecture puts an affine layer right after every
                // convolution: fold it in and pack now.
                match parsed.pop() {
                    Some(Parsed::Con(con)) => Parsed::Packed(PackedConv::new(con, &affine)),
                    _ => unreachable!("anet_type has a con before every affine"),
                }
            }
            Spec::Relu => {
                let version = r.string("relu version")?;
                expect_layer(i, spec, &["relu_", "relu_2"], &version)?;
                let disabled = version == "relu_2" && r.boolean("relu disabled")?;
                Parsed::Relu(!disabled)
            }
            Spec::MaxPool => {
                parse_pool(&mut r, i, spec, "max_pool_2", [3, 3, 2, 2, 0, 0])?;
                Parsed::Plain
            }
            Spec::AvgPool => {
                parse_pool(&mut r, i, spec, "avg_pool_2", [2, 2, 2, 2, 0, 0])?;
                Parsed::Plain
            }
            Spec::AvgPoolAll => {
                parse_pool(&mut r, i, spec, "avg_pool_2", [0, 0, 1, 1, 0, 0])?;
                Parsed::Plain
            }
            Spec::AddPrev(tag) => {
                let version = r.string("add_prev version")?;
                expect_layer(i, spec, &["add_prev_"], &version)?;
                channels = channels.max(tagged[tag]);
                Parsed::Plain
            }
            Spec::Tag(tag) => {
                tagged[tag] = channels;
                Parsed::Plain
            }
            Spec::Skip(tag) => {
                channels = tagged[tag];
                Parsed::Plain
            }
            Spec::Fc(outputs) => {
                let fc = parse_fc(&mut r, i, spec, channels, outputs)?;
                skip_layer_state(&mut r, version, false)?;
                let end = r.pos;
                let extra = r.rest()?;
                if extra > 0 {
                    return Err(LoadError::TrailingData {
                        offset: end,
                        bytes: extra as usize,
                    });
                }
                return Ok(assemble(input_mean, parsed, fc));
            }
        };
        if spec.is_add_layer() {
            skip_layer_state(&mut r, version, i == 0)?;
        }
        parsed.push(p);
    }
    unreachable!("the architecture ends with its fc layer")
}

/// Groups the parsed layers into the stem, the blocks and the fc layer. The
/// order was checked against `architecture()` while parsing, so each take
/// below finds the layer it expects.
fn assemble(input_mean: [f32; 3], parsed: Vec<Parsed>, fc: Vec<f32>) -> DlibModel {
    let mut it = parsed.into_iter().filter(|p| !matches!(p, Parsed::Plain));
    let mut next = move || it.next().expect("checked by parse");
    let conv = |p: Parsed| match p {
        Parsed::Packed(c) => c,
        _ => unreachable!("checked by parse"),
    };
    let relu = |p: Parsed| match p {
        Parsed::Relu(on) => on,
        _ => unreachable!("checked by parse"),
    };
    let stem = conv(next());
    let stem_relu = relu(next());
    let mut channels_in = stem.cout;
    let blocks = BLOCKS
        .iter()
        .map(|&shape| {
            let block = BlockParams {
                shape,
                channels_in,
                conv_a: conv(next()),
                relu_a: relu(next()),
                conv_b: conv(next()),
                relu_out: relu(next()),
            };
            channels_in = channels_in.max(shape.filters);
            block
        })
        .collect();
    DlibModel {
        input_mean,
        stem,
        stem_relu,
        blocks,
        fc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_has_dlibs_layer_count() {
        // 4 stem layers, 10 plain blocks of 8, 4 down blocks of 11, the
        // global pool and the fc layer (dnn_face_recognition_ex.cpp).
        assert_eq!(architecture().len(), 4 + 10 * 8 + 4 * 11 + 2);
    }
}
