use super::*;
use crate::interop::protobuf::{fields, Value};

fn cnn() -> ModelSpec {
    serde_json::from_str(
        r#"{"input":[1,6,6],"layers":[
            {"type":"conv2d","filters":2,"kernel":3,"padding":1,"activation":"relu"},
            {"type":"maxpool2d","size":2},
            {"type":"avgpool2d","size":3,"stride":1},
            {"type":"flatten"},
            {"type":"dropout","rate":0.5},
            {"type":"dense","units":4,"activation":"gelu"},
            {"type":"dense","units":3}]}"#,
    )
    .unwrap()
}

/// Parameters of `spec`, every value distinct.
fn params(spec: &ModelSpec) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    for (i, sh) in spec.shapes().unwrap().iter().enumerate() {
        for (kind, shape) in [("weight", &sh.weight), ("bias", &sh.bias)] {
            if let Some(shape) = shape {
                let n = shape.iter().product::<usize>();
                out.push(NamedTensor {
                    name: format!("layers.{i}.{kind}"),
                    shape: shape.clone(),
                    data: (0..n).map(|k| k as f32 * 0.01 - 0.1).collect(),
                });
            }
        }
    }
    out
}

fn strings<'a>(f: &[(u32, Value<'a>)], field: u32) -> Vec<&'a str> {
    f.iter()
        .filter_map(|(n, v)| match v {
            Value::Len(b) if *n == field => std::str::from_utf8(b).ok(),
            _ => None,
        })
        .collect()
}

fn messages<'a>(f: &[(u32, Value<'a>)], field: u32) -> Vec<Vec<(u32, Value<'a>)>> {
    f.iter()
        .filter_map(|(n, v)| match v {
            Value::Len(b) if *n == field => Some(fields(b, "t").unwrap()),
            _ => None,
        })
        .collect()
}

fn varints(f: &[(u32, Value)], field: u32) -> Vec<i64> {
    f.iter()
        .filter_map(|(n, v)| match v {
            Value::Varint(x) if *n == field => Some(*x as i64),
            _ => None,
        })
        .collect()
}

#[test]
fn layers_map_to_nodes_with_named_io_and_a_dynamic_batch() {
    let spec = cnn();
    let st = Standardizer {
        mean: vec![0.5; 36],
        std: vec![2.0; 36],
    };
    let m = export(&spec, &params(&spec), Some(&st), true, "ck").unwrap();
    let gelu = [
        "Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul",
    ];
    let want: Vec<&str> = [
        "Sub",
        "Div",
        "Conv",
        "Relu",
        "MaxPool",
        "AveragePool",
        "Flatten",
        "Gemm",
    ]
    .into_iter()
    .chain(gelu)
    .chain(["Gemm", "Softmax"])
    .collect();
    assert_eq!(m.ops, want);
    assert_eq!((m.output, m.standardized), (PROBABILITIES, true));

    let model = fields(&m.bytes, "model").unwrap();
    assert_eq!(varints(&model, 1), [IR_VERSION]);
    assert_eq!(varints(&messages(&model, 8)[0], 2), [OPSET]);
    let graph = &messages(&model, 7)[0];
    let nodes = messages(graph, 1);
    assert_eq!(nodes.len(), want.len());
    assert_eq!(strings(&nodes[0], 1), [INPUT, "standardize.mean"]);
    // Each node reads the previous one's output; the last writes the graph's output.
    for k in 1..nodes.len() {
        let prev = strings(&nodes[k - 1], 2)[0];
        let ins = strings(&nodes[k], 1);
        assert!(
            ins.contains(&prev) || want[k - 1] == "Mul" || want[k - 1] == "Add",
            "node {k} {ins:?}"
        );
    }
    assert_eq!(strings(nodes.last().unwrap(), 2), [PROBABILITIES]);
    // Conv's attributes: kernel 3, stride 1, pads 1 on all four sides.
    let conv_attrs = messages(&nodes[2], 5);
    let pads = conv_attrs
        .iter()
        .find(|a| strings(a, 1) == ["pads"])
        .unwrap();
    assert_eq!(varints(pads, 8), [1, 1, 1, 1]);
    assert_eq!(varints(pads, 20), [7]); // INTS
                                        // Initializers keep the checkpoint's names and PyTorch's shapes.
    let inits = messages(graph, 5);
    let dense = inits
        .iter()
        .find(|t| strings(t, 8) == ["layers.5.weight"])
        .unwrap();
    assert_eq!(varints(dense, 1), [4, 2]);
    let mean = inits
        .iter()
        .find(|t| strings(t, 8) == ["standardize.mean"])
        .unwrap();
    assert_eq!(varints(mean, 1), [1, 6, 6]);
    // input [batch, 1, 6, 6] and probabilities [batch, 3].
    for (field, name, dims) in [(11, INPUT, vec![1, 6, 6]), (12, PROBABILITIES, vec![3])] {
        let vi = &messages(graph, field)[0];
        assert_eq!(strings(vi, 1), [name]);
        let ty = &messages(vi, 2)[0];
        let tt = &messages(ty, 1)[0];
        assert_eq!(varints(tt, 1), [1]); // FLOAT
        let dim = messages(&messages(tt, 2)[0], 1);
        assert_eq!(strings(&dim[0], 2), [BATCH]);
        let sizes: Vec<i64> = dim[1..].iter().flat_map(|d| varints(d, 1)).collect();
        assert_eq!(sizes, dims);
    }
}

#[test]
fn without_softmax_or_standardizer_the_graph_is_the_layers() {
    let spec = ModelSpec::new(
        vec![3],
        vec![
            LayerSpec::dense(4, Activation::Tanh),
            LayerSpec::Dropout { rate: 0.1 },
            LayerSpec::dense(2, Activation::Identity),
        ],
    );
    let m = export(&spec, &params(&spec), None, false, "ck").unwrap();
    assert_eq!(m.ops, ["Gemm", "Tanh", "Gemm"]);
    assert_eq!((m.output, m.standardized), (LOGITS, false));
    // A model that is only dropout is the identity.
    let spec = ModelSpec::new(vec![3], vec![LayerSpec::Dropout { rate: 0.1 }]);
    assert_eq!(
        export(&spec, &[], None, false, "ck").unwrap().ops,
        ["Identity"]
    );
}

#[test]
fn incomplete_or_inconsistent_checkpoints_are_refused() {
    let spec = cnn();
    let mut p = params(&spec);
    p.retain(|t| t.name != "layers.5.bias");
    let e = export(&spec, &p, None, false, "ck.safetensors").unwrap_err();
    assert!(e.is_bad_input());
    assert!(
        e.to_string()
            .starts_with("ck.safetensors: has no tensor layers.5.bias"),
        "{e}"
    );
    let mut p = params(&spec);
    p[0].shape = vec![2, 1, 9];
    let e = export(&spec, &p, None, false, "ck").unwrap_err();
    assert!(e.to_string().contains("has shape [2, 1, 9]"), "{e}");
    let st = Standardizer {
        mean: vec![0.0; 5],
        std: vec![1.0; 5],
    };
    let e = export(&spec, &params(&spec), Some(&st), false, "ck").unwrap_err();
    assert!(e.to_string().contains("standardizer has 5 features"), "{e}");
}
