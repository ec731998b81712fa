# The PyTorch peer of bench/device/webgpu-setup.ts' small residual U-Net (residualUnet): the same layers, one train step.
import sys, time, torch, torch.nn as nn, torch.nn.functional as F
def cbr(i, o, s=1, relu=True):
    l = [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o)] + ([nn.ReLU()] if relu else [])
    return nn.Sequential(*l)
class Res(nn.Module):
    def __init__(s, i, o, st):
        super().__init__(); s.a = cbr(i, o, st); s.b = cbr(o, o, 1, False)
        s.sc = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o)) if (st != 1 or i != o) else nn.Identity()
    def forward(s, x): return F.relu(s.b(s.a(x)) + s.sc(x))
class Net(nn.Module):
    def __init__(s):
        super().__init__(); s.stem = cbr(3, 32, 2); s.s1 = Res(32, 32, 1); s.s2 = Res(32, 64, 2); s.s3 = Res(64, 128, 2); s.s4 = Res(128, 256, 2)
        s.d3 = cbr(256 + 128, 128); s.d2 = cbr(128 + 64, 64); s.d1 = cbr(64 + 32, 32); s.out = nn.Conv2d(32, 1, 1)
    def forward(s, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode='bilinear', align_corners=False)
        x = s.stem(x); a = s.s1(x); b = s.s2(a); c = s.s3(b); d = s.s4(c)
        y = s.d3(torch.cat([up(d), c], 1)); y = s.d2(torch.cat([up(y), b], 1)); y = s.d1(torch.cat([up(y), a], 1))
        return s.out(up(y))
for B, S in [(4, 256), (8, 512)]:
    m = Net().cuda(); opt = torch.optim.Adam(m.parameters(), 1e-3)
    X = torch.rand(B, 3, S, S, device='cuda'); Y = (torch.rand(B, 1, S, S, device='cuda') > 0.5).float()
    ts = []
    for i in range(12):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        opt.zero_grad(); loss = F.binary_cross_entropy_with_logits(m(X), Y); loss.backward(); opt.step(); loss.item()
        torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1000)
    ts = sorted(ts[2:]); print(f"RESULT torch fp32 B={B} S={S}: train median {ts[len(ts)//2]:.1f} ms  params {sum(p.numel() for p in m.parameters())}")
