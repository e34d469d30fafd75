//! The network: shapes, parameter count, activations, dropout and prediction helpers.

use candle_core::{Device, Tensor};

use super::spec;
use crate::model::{Mlp, MlpSpec, TrainError};
use crate::strategy::{Activation, Architecture};
use host_service_base::SplitMix64;

#[test]
fn spec_counts_parameters_and_describes_itself() {
    let arch = Architecture {
        hidden_layers: vec![50, 25],
        activation: Activation::Relu,
        dropout: 0.2,
    };
    let s = MlpSpec::new(&arch, 24);
    // (24*50 + 50) + (50*25 + 25) + (25*3 + 3)
    assert_eq!(s.parameters_count(), 1250 + 1275 + 78);
    assert_eq!(s.architecture(), "24 -> 50 -> 25 -> 3 (relu, dropout 0.2)");
    let mlp = Mlp::new(&s, &Device::Cpu, 1).expect("mlp");
    let counted: usize = mlp.varmap().all_vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(counted, mlp.parameters_count());
    assert_eq!(mlp.weights().expect("weights").names().count(), 6);
}

#[test]
fn invalid_specs_and_inputs_are_errors_not_panics() {
    let mut s = spec(4, Activation::Relu, 0.0);
    s.dropout = 1.0;
    assert!(matches!(
        Mlp::new(&s, &Device::Cpu, 1),
        Err(TrainError::InvalidConfig(_))
    ));
    let s = MlpSpec {
        n_features: 0,
        ..spec(4, Activation::Relu, 0.0)
    };
    assert!(matches!(s.validate(), Err(TrainError::InvalidConfig(_))));
    let mlp = Mlp::new(&spec(4, Activation::Relu, 0.0), &Device::Cpu, 1).expect("mlp");
    let err = mlp.predict(&[0.0; 7]).expect_err("not whole rows");
    assert!(err.to_string().contains("7 values"), "{err}");
    assert_eq!(mlp.predict(&[]).expect("no rows"), Vec::<u32>::new());
    // Weights of another architecture are refused.
    let other = Mlp::new(&spec(5, Activation::Relu, 0.0), &Device::Cpu, 1).expect("mlp");
    let weights = other.weights().expect("weights");
    let err = Mlp::from_weights(mlp.spec(), &weights, &Device::Cpu).expect_err("mismatch");
    assert!(err.to_string().contains("shape"), "{err}");
}

#[test]
fn every_activation_gives_finite_probabilities() {
    let x: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) / 7.0).collect();
    for activation in [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::LeakyRelu,
        Activation::Gelu,
    ] {
        let mlp = Mlp::new(&spec(4, activation, 0.3), &Device::Cpu, 3).expect("mlp");
        let p = mlp.predict_proba(&x).expect("proba");
        assert_eq!(p.len(), 10);
        for row in &p {
            assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
            assert!(
                (row.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                "{activation:?}"
            );
        }
        let classes = mlp.predict(&x).expect("predict");
        for (row, class) in p.iter().zip(&classes) {
            let best = row.iter().cloned().fold(f32::MIN, f32::max);
            assert_eq!(row[*class as usize], best);
        }
    }
}

#[test]
fn dropout_applies_in_training_mode_only_and_is_seeded() {
    let mlp = Mlp::new(&spec(4, Activation::Relu, 0.5), &Device::Cpu, 9).expect("mlp");
    let x = Tensor::from_vec(
        (0..32).map(|i| i as f32 / 10.0).collect::<Vec<_>>(),
        (8, 4),
        &Device::Cpu,
    )
    .expect("x");
    let eval_a = mlp
        .forward(&x, None)
        .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?));
    let eval_b = mlp
        .forward(&x, None)
        .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?));
    assert_eq!(
        eval_a.as_ref().expect("eval"),
        eval_b.as_ref().expect("eval")
    );
    let train = |seed| {
        let mut rng = SplitMix64::new(seed);
        mlp.forward(&x, Some(&mut rng))
            .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
            .expect("train forward")
    };
    assert_eq!(train(1), train(1));
    assert_ne!(train(1), train(2));
    assert_ne!(train(1), eval_a.expect("eval"));
}

#[test]
fn same_seed_same_initial_weights() {
    let s = spec(4, Activation::Tanh, 0.0);
    let a = Mlp::new(&s, &Device::Cpu, 5)
        .and_then(|m| m.weights()?.to_vecs())
        .expect("a");
    let b = Mlp::new(&s, &Device::Cpu, 5)
        .and_then(|m| m.weights()?.to_vecs())
        .expect("b");
    let c = Mlp::new(&s, &Device::Cpu, 6)
        .and_then(|m| m.weights()?.to_vecs())
        .expect("c");
    assert_eq!(a, b);
    assert_ne!(a, c);
    // PyTorch's nn.Linear bound: 1/sqrt(fan_in) = 0.5 for the first layer.
    assert!(a["layer0.weight"].iter().all(|w| w.abs() <= 0.5));
}
