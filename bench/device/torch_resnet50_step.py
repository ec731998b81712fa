# The PyTorch peer of bench/device/webgpu-diagnose.ts' ResNet-50 step (webgpu-setup.ts' resnet50Classifier): B=2, 512x512, Adam.
import time, torch, torchvision
m = torchvision.models.resnet50(num_classes=2).cuda(); opt = torch.optim.Adam(m.parameters(), 1e-4)
X = torch.rand(2, 3, 512, 512, device='cuda'); Y = torch.tensor([0, 1], device='cuda'); ts = []
for i in range(15):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(m(X), Y); opt.zero_grad(); loss.backward(); opt.step(); torch.cuda.synchronize()
    ts.append((time.perf_counter() - t0) * 1000)
print(f"RESULT torch resnet50 B=2 S=512 train step median {sorted(ts[3:])[6]:.1f} ms")
