from planner.size import candidate_layouts, size


def test_signature_1m_says_plainly():
    r = size("minimax-m2.5", "b200", ctx=2**20, quant="fp8")
    note = r.context_note
    assert note is not None and note.model_max_tokens == 196_608
    assert {"minimax-m1-80k", "minimax-text-01"} <= set(note.models_supporting)
    # 1,048,576 x 253,952 B = 248 GiB of bf16 KV in aggregate.
    assert round(note.kv_bytes_aggregate / 2**30) == 248
    assert all(p.max_model_len == 196_608 for p in r.plans)
    assert r.recommended is not None and r.recommended.num_gpus == 2
    d = r.to_dict()
    assert set(d) >= {"model", "gpu", "plans", "recommended"}


def test_h100_tp4_fits_full_context_only_marginally():
    # 4 x H100 at 196,608 tokens: one request needs 11.62 GiB of KV per GPU and the plan leaves about
    # 11.9 GiB, inside the MoE error band: it is offered with a warning and the safe options are named.
    r = size("minimax-m2.5", "h100")
    assert r.recommended is not None and r.recommended.num_gpus == 4
    assert "kv-cache-marginal" in {p.id for p in r.recommended.problems}
    tp8 = size("minimax-m2.5", "h100", tp=8, ep=True).recommended
    assert tp8 is not None and "--enable-expert-parallel" in size("minimax-m2.5", "h100", tp=8, ep=True).command.shell()


def test_pp_only_when_needed():
    m = size("minimax-text-01", "h100", ctx=32768, vllm_version=(0, 20, 0))
    assert any(p.pp > 1 for p in m.plans)
    small = size("llama-3.1-8b-instruct", "h100")
    assert all(p.pp == 1 for p in small.plans)
    assert small.recommended is not None and small.recommended.tp == 1


def test_num_gpus_restricts_layouts(m25):
    lays = candidate_layouts(m25, tp=None, pp=None, dp=None, ep=None, num_gpus=8)
    assert all(x.num_gpus == 8 for x in lays)
    assert any(x.dp == 8 and x.ep for x in lays)


def test_nothing_fits_says_why():
    r = size("minimax-m2.5", "l40s", tp=2)
    assert r.recommended is None and r.notes
    assert "nothing fits" in repr(r)


def test_repr_html():
    html = size("minimax-m2.5", "h200", ctx=131072)._repr_html_()
    assert "<table>" in html and "minimax-m2.5" in html
